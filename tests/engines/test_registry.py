"""make_engine: names, and simulators refused before they allocate a state wider than memory."""

from __future__ import annotations

import types

import pytest

from qsetfit import HeadConfig, QSetFitError, build_head_circuit, make_engine


@pytest.fixture
def one_gib(monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=2**30, total=2**31))


@pytest.mark.parametrize("qubits", [34, 200])
@pytest.mark.parametrize("engine", ["torch", "aer-exact"])
def test_a_head_wider_than_memory_is_refused_naming_the_limit(qubits, engine, one_gib):
    hc = build_head_circuit(HeadConfig(qubits=qubits, encoders=0, connectivity=1, reuploads=1, layers=1))
    with pytest.raises(QSetFitError, match=rf"a {qubits}-qubit statevector needs .* GiB on '{engine}' but 1 GiB of "
                                           r"memory is available: at most 26 qubits fit here; use a narrower head"):
        make_engine(hc, engine)


def test_a_head_that_fits_is_built(one_gib):
    hc = build_head_circuit(HeadConfig(qubits=4, encoders=0, connectivity=1, reuploads=1, layers=1))
    assert make_engine(hc, "torch").num_outputs == 1


def test_a_noise_profile_as_backend_names_a_backend_that_uses_it():
    hc = build_head_circuit(HeadConfig(qubits=2, encoders=0, connectivity=1, reuploads=1, layers=1))
    with pytest.raises(QSetFitError, match=r"'depolarizing-1e-3' is a noise profile, not a backend: pass a backend "
                                           r"profile that uses it \(.*aer-depolarizing.*\); e\.g\. --backend"):
        make_engine(hc, "depolarizing-1e-3")
    with pytest.raises(QSetFitError, match="'depolarizing-1e-2' is a noise profile, not a backend"):
        make_engine(hc, "depolarizing-1e-2")
