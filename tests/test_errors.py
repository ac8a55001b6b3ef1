"""The one error type and the "did you mean" rule (errors.py)."""

from __future__ import annotations

import pytest

from qsetfit import QSetFitError
from qsetfit.errors import check_keys, did_you_mean


def test_qsetfit_error_is_a_value_error():
    assert issubclass(QSetFitError, ValueError)  # callers that catch ValueError keep working


def test_did_you_mean_suggests_the_one_closest_name_or_none():
    assert did_you_mean("epoch", ["epochs", "seed", "engine"]) == ["epochs"]
    assert did_you_mean("zzz", ["epochs", "seed"]) == []


def test_check_keys_names_the_first_unknown_key_its_nearest_neighbour_and_every_valid_one():
    check_keys(["a", "b"], ["a", "b", "c"], "option")  # all known: nothing raised
    with pytest.raises(QSetFitError) as err:
        check_keys(["seed", "lerning_rate", "zzz"], ["seed", "learning_rate"], "training argument")
    assert str(err.value) == ("unknown training argument 'lerning_rate'; did you mean 'learning_rate'? valid keys: "
                              "seed, learning_rate")


def test_check_keys_puts_the_key_where_a_template_asks():
    with pytest.raises(QSetFitError, match=r"^unknown key 'qbits' in profile.toml; did you mean 'qubits'\?"):
        check_keys(["qbits"], ["qubits"], "key {!r} in profile.toml")
    with pytest.raises(QSetFitError, match=r"^unknown option 'zzz' valid keys: a$"):  # no near name: no hint
        check_keys(["zzz"], ["a"], "option")
