"""make_engine: names, and simulators refused before they allocate a state wider than memory."""

from __future__ import annotations

import types

import pytest

from qsetfit import HeadConfig, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.registry import available_engines


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


TINY = HeadConfig(qubits=2, encoders=0, connectivity=1, reuploads=1, layers=1)
EXACT = ("aer-exact", "torch-float32")  # noise-free: the torch engine's values


def _local_engines():
    from qsetfit import available_engines

    return [name for name in available_engines() if not name.startswith("ibm-")]


@pytest.mark.parametrize("name", _local_engines())
def test_every_local_engine_builds_and_runs_the_head(name):
    """Each registered name builds; exact ones equal the torch engine, noisy ones stay valid expectations."""
    import torch

    from tests.helpers import seeded

    hc = build_head_circuit(TINY)
    x = torch.rand(3, len(hc.inputs), dtype=torch.float64, generator=seeded(1))
    w = torch.rand(len(hc.weights), dtype=torch.float64, generator=seeded(2))
    out = make_engine(hc, name)(x, w)
    assert out.shape == (3, len(hc.observables)) and torch.isfinite(out).all() and out.abs().max() <= 1
    if name in EXACT:
        assert (out.double() - make_engine(hc, "torch")(x, w)).abs().max() <= 1e-5


def test_a_hardware_profile_without_an_account_says_how_to_set_one_up(monkeypatch):
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    from qsetfit import available_engines
    from qsetfit.engines.ibm import credentials

    for var in (credentials.TOKEN_VAR, credentials.INSTANCE_VAR, credentials.CHANNEL_VAR):
        monkeypatch.delenv(var, raising=False)

    def no_account(**kwargs):
        raise AccountNotFoundError("Unable to find account.")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", no_account)
    hardware = [name for name in available_engines() if name.startswith("ibm-")]
    assert hardware
    for name in hardware:
        with pytest.raises(QSetFitError, match="(?s)no IBM Quantum credentials found.*save_account"):
            make_engine(build_head_circuit(TINY), name)


def test_a_misspelt_engine_name_gets_a_did_you_mean():
    with pytest.raises(QSetFitError, match="did you mean 'aer-exact'"):
        make_engine(build_head_circuit(TINY), "aer-exakt")


@pytest.fixture
def own_registry(monkeypatch):
    """A private copy of the registry's tables, so test registrations vanish afterwards."""
    from qsetfit.engines import registry

    registry.available_engines()  # load the built-ins first
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))
    monkeypatch.setattr(registry, "_RESOLVERS", list(registry._RESOLVERS))
    return registry


def test_registered_names_and_resolvers_are_listed_and_resolved(own_registry):
    hc = build_head_circuit(TINY)
    built = []

    def factory(head_circuit, **options):
        built.append(options)
        return make_engine(head_circuit, "torch")

    own_registry.register_engine("my-engine", factory)
    own_registry.register_resolver(lambda name: factory if name.startswith("mine:") else None, lambda: ["mine:a"])
    assert {"my-engine", "mine:a", "torch"} <= set(own_registry.available_engines())
    make_engine(hc, "my-engine", depth=3)
    make_engine(hc, "mine:anything")
    assert built == [{"depth": 3}, {}]
    with pytest.raises(QSetFitError, match="unknown engine or backend 'yours:a'; available: .*mine:a.*my-engine"):
        make_engine(hc, "yours:a")


@pytest.mark.parametrize("method,refused", [("statevector", False), ("density_matrix", True)])
def test_a_resolved_density_matrix_counts_twice_the_qubits(own_registry, one_gib, method, refused):
    """14 qubits: a 16 MiB statevector fits in 1 GiB, a 28-qubit density matrix (4 GiB) does not."""
    hc = build_head_circuit(HeadConfig(qubits=14, encoders=0, connectivity=1, reuploads=1, layers=1))
    from qsetfit.engines.base import EngineInfo

    engine = types.SimpleNamespace(describe=lambda: EngineInfo("test", method))
    own_registry.register_resolver(lambda name: (lambda h, **o: engine) if name == "dm" else None, lambda: ["dm"])
    if refused:
        with pytest.raises(QSetFitError, match="a 28-qubit density_matrix needs 4 GiB on 'dm'"):
            make_engine(hc, "dm")
    else:
        assert make_engine(hc, "dm") is engine


def test_a_batch_too_large_for_memory_names_the_largest_that_fits(one_gib):
    from qsetfit.engines.registry import check_statevector_memory

    check_statevector_memory(20, engine="torch", batch=64)  # 64 x 16 MiB = 1 GiB: fits exactly
    with pytest.raises(QSetFitError, match=r"a batch of 65 inputs needs .* on 'torch' .* use a smaller batch "
                                           r"\(at most 64\)"):
        check_statevector_memory(20, engine="torch", batch=65)


def test_an_absent_engine_module_is_refused_clearly_but_its_missing_dependency_is_raised(own_registry,
                                                                                     monkeypatch):
    """A profile kind whose module is not installed is one clear error; an ImportError from inside an engine
    module (a broken dependency) is raised as it is, never turned into "not provided"."""
    import importlib

    from qsetfit.profiles import BackendProfile

    profile = BackendProfile(name="x", engine="aer")
    real = importlib.import_module

    def missing(name):
        def fake_import(module, *args):
            if module.startswith("qsetfit.engines.aer"):
                raise ModuleNotFoundError(f"No module named {name or module!r}", name=name or module)
            return real(module, *args)
        return fake_import

    monkeypatch.setattr(importlib, "import_module", missing(None))  # the engine module itself is absent
    monkeypatch.setattr(importlib.util, "find_spec", lambda m: None if m.startswith("qsetfit.engines.aer") else 1)
    with pytest.raises(QSetFitError, match="uses engine = 'aer', which this installation does not provide"):
        own_registry.build_engine(None, profile)
    monkeypatch.setattr(importlib, "import_module", missing("qiskit_aer"))
    with pytest.raises(ModuleNotFoundError, match="qiskit_aer"):
        own_registry.build_engine(None, profile)


def test_unknown_engine_lists_the_valid_ones():
    hc = build_head_circuit(HeadConfig(qubits=2, encoders=0, connectivity=1))
    with pytest.raises(QSetFitError, match="unknown engine or backend 'torchh'.*torch"):
        make_engine(hc, "torchh")
    assert "torch" in available_engines()
