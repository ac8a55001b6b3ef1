"""The ibm engine's settings (engines/ibm/settings.py): fake names, shots per row, Runtime options."""

from __future__ import annotations

import math

import pytest

from qsetfit import QSetFitError
from qsetfit.engines.ibm.settings import DEFAULT_SHOTS, RuntimeSettings, is_fake
from qsetfit.profiles import load_backend_profile


def test_fake_backends_are_local_testing_mode_and_real_ones_are_not():
    assert is_fake("fake_torino") and is_fake("fake_manila")
    assert not is_fake("ibm_torino") and not is_fake("torino_fake")


@pytest.mark.parametrize("shots, precision, per_row", [
    (1000, 0.0, 1000),
    (0, 0.01, 10_000),  # 1 / 0.01**2
    (0, 0.015, 4445),  # ceil(4444.4...): never fewer shots than the precision asks
])
def test_shots_per_row_follow_the_standard_error_of_a_mean(shots, precision, per_row):
    settings = RuntimeSettings(shots=shots, precision=precision)
    assert settings.shots_per_row == per_row
    if precision:
        assert 1 / math.sqrt(per_row) <= precision < 1 / math.sqrt(per_row - 1)


def test_neither_shots_nor_precision_costs_what_runtimes_default_precision_does():
    # EstimatorOptions.default_precision is documented as 0.015625 (1 / sqrt(4096)) when unset
    assert RuntimeSettings().shots_per_row == DEFAULT_SHOTS == math.ceil(1 / 0.015625**2)


def test_from_profile_reads_profile_fields_then_engine_extras():
    profile = load_backend_profile("ibm-torino").replace(shots=0, resilience_level=2)
    settings = RuntimeSettings.from_profile(profile, {"precision": 0.02, "dynamical_decoupling": True})
    assert (settings.shots, settings.precision, settings.resilience_level) == (0, 0.02, 2)
    assert settings.dynamical_decoupling == "XY4"  # True means the default sequence
    assert RuntimeSettings.from_profile(profile, {"dynamical_decoupling": False}).dynamical_decoupling == ""


@pytest.mark.parametrize("extra, message", [
    ({"shots": 100, "precision": 0.1}, "shots or precision"),
    ({"shots": -1}, ">= 0"),
    ({"precision": -0.5}, ">= 0"),
])
def test_contradictory_or_negative_settings_are_refused(extra, message):
    profile = load_backend_profile("ibm-torino").replace(shots=0)
    with pytest.raises(QSetFitError, match=message):
        RuntimeSettings.from_profile(profile, extra)


def test_local_options_leave_out_what_local_testing_mode_ignores_and_runtime_accepts_both():
    from qiskit_ibm_runtime.options import EstimatorOptions

    settings = RuntimeSettings(precision=0.05, resilience_level=0, twirling=True, dynamical_decoupling="XpXm")
    assert settings.options(local=True) == {"default_precision": 0.05}
    remote = settings.options(local=False)
    assert remote == {"default_precision": 0.05, "resilience_level": 0,
                      "twirling": {"enable_gates": True, "enable_measure": True},
                      "dynamical_decoupling": {"enable": True, "sequence_type": "XpXm"}}
    options = EstimatorOptions(**remote)  # the library's own validation of every key and value
    assert options.default_precision == 0.05 and options.resilience_level == 0
    assert options.twirling.enable_measure and options.dynamical_decoupling.sequence_type == "XpXm"
