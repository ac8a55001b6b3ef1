"""The ibm engine: Runtime local testing mode on fake backends, exact ISA read-outs, credentials, width."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qsetfit import HeadConfig, HybridHead, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.ibm import credentials
from qsetfit.engines.ibm.runtime import IBMRuntimeEngine
from qsetfit.engines.ibm.settings import RuntimeSettings
from qsetfit.profiles import load_backend_profile

torch.set_num_threads(1)
SMALL = HeadConfig(qubits=3, encoders=0, measured=2, connectivity=1, reuploads=1, layers=1)


@pytest.fixture(scope="module")
def small():
    hc = build_head_circuit(SMALL)
    rng = np.random.default_rng(5)
    return hc, rng.uniform(-1, 1, (4, 3)), rng.uniform(-np.pi, np.pi, len(hc.weights))


@pytest.fixture(scope="module")
def torino(small):
    return make_engine(small[0], "fake-torino", shots=16384, seed=7)


def _isa_exact(engine, x, w):
    """<O> of the cached ISA circuit with its laid-out observables, by Statevector (no noise, no shots)."""
    rows = engine.pubs(x, w)[0][2][:, 0, :]
    out = []
    for row in rows:
        state = Statevector(engine.isa_circuit.assign_parameters(dict(zip(engine.isa_circuit.parameters, row))))
        out.append([state.expectation_value(o).real for o in engine.isa_observables])
    return np.array(out)


def test_shipped_ibm_profiles_load():
    for name, backend in (("fake-torino", "fake_torino"), ("fake-fez", "fake_fez"), ("ibm-torino", "ibm_torino")):
        profile = load_backend_profile(name)
        assert profile.engine == "ibm" and profile.backend == backend and profile.mode == "batch"


def test_fake_backend_end_to_end_through_the_head(torino):
    head = HybridHead(SMALL, seed=3)
    head.set_engine("fake-torino", seed=4)
    engine = head.quantum.engine
    emb = torch.tensor(np.random.default_rng(0).uniform(-1, 1, (5, 3)))
    labels = torch.tensor([0, 1, 0, 1, 1])
    from qsetfit.training.head_trainer import evaluate

    with torch.no_grad():
        metrics = evaluate(head, emb, labels)
    assert 0 <= metrics["accuracy"] <= 1 and np.isfinite(metrics["loss"])
    assert isinstance(engine, IBMRuntimeEngine)
    assert engine.calls == 1 and engine.pubs_submitted == 1 and len(engine.jobs) == 1


def test_one_pub_per_call_and_the_layout(torino, small):
    _, x, w = small
    torino.reset_counters()
    out = torino(torch.tensor(x), torch.tensor(w))
    assert out.shape == (4, 2) and out.dtype == torch.float64
    assert torino.calls == 1 and torino.pubs_submitted == 1
    pub = torino.pubs(x, w)[0]
    assert pub[2].shape == (4, 1, len(torino.isa_circuit.parameters)) and len(pub[1]) == 1 and len(pub[1][0]) == 2
    assert len(set(torino.physical_qubits)) == 3 and all(0 <= q < 133 for q in torino.physical_qubits)
    assert set(torino.physical_qubits) <= set(torino.used_qubits)
    assert "physical_qubits" in repr(torino)


def test_isa_circuit_with_laid_out_observables_is_exact(small):
    hc, x, w = small
    exact = make_engine(hc, "torch")(torch.tensor(x), torch.tensor(w)).detach().numpy()
    for name in ("fake-torino", "fake-fez"):
        engine = make_engine(hc, name, noise=False, shots=8192, seed=1)
        assert np.abs(_isa_exact(engine, x, w) - exact).max() <= 1e-8
        sampled = engine(torch.tensor(x), torch.tensor(w)).numpy()  # noiseless Runtime run: shot noise only
        assert np.abs(sampled - exact).max() <= 5 / np.sqrt(8192)


def test_fake_backend_is_close_to_aer_device(torino, small):
    hc, x, w = small
    device = make_engine(hc, "aer-device")(torch.tensor(x), torch.tensor(w)).detach().numpy()
    runtime = torino(torch.tensor(x), torch.tensor(w)).numpy()
    exact = make_engine(hc, "torch")(torch.tensor(x), torch.tensor(w)).detach().numpy()
    assert np.abs(runtime - device).max() <= 5 / np.sqrt(16384)  # same noise source, shot noise only
    assert np.abs(device - exact).max() > 1e-3  # the noise is really there


def test_local_device_mode_runs_on_the_fake_backend_itself(small, tmp_path):
    hc, x, w = small
    profile = tmp_path / "manila.toml"
    profile.write_text('engine = "ibm"\nbackend = "fake_manila"\nmode = "job"\nshots = 8192\n')
    full = make_engine(hc, str(profile), local="device", seed=11)
    compact = make_engine(hc, str(profile), seed=12)
    assert full.isa_circuit.num_qubits == 5 and compact.isa_circuit.num_qubits == 3
    assert full.physical_qubits == compact.physical_qubits and full.mode_backend is full.backend
    a, b = (e(torch.tensor(x), torch.tensor(w)).numpy() for e in (full, compact))
    assert np.abs(a - b).max() <= shot_tolerance(8192, a.size)  # same device noise, two shot samples


def shot_tolerance(shots: int, entries: int, false_failure: float = 1e-6) -> float:
    """Largest |a - b| two independent ``shots``-shot <P> estimates of the same mean reach, bar ``false_failure``.

    Each estimate is the mean of ``shots`` outcomes in [-1, 1] (variance <= 1/shots), so a - b is a sum of
    2*shots independent terms of range 2/shots; Hoeffding: P(|a - b| >= t) <= 2 exp(-shots t^2 / 4) (the
    Gaussian picture, sd <= sqrt(2/shots), gives nearly the same t). A union bound over ``entries`` compared
    entries at ``false_failure`` in all: t = sqrt(4 ln(2 entries / false_failure) / shots), 8.15/sqrt(shots) for
    8 entries at 1e-6.
    """
    return float(np.sqrt(4 * np.log(2 * entries / false_failure) / shots))


def test_inference_only(torino, small):
    _, x, w = small
    ws = torch.tensor(w, requires_grad=True)
    out = torino(torch.tensor(x), ws)
    with pytest.raises(QSetFitError, match="inference only"):
        out.sum().backward()


def test_head_wider_than_the_backend_is_refused(tmp_path):
    profile = tmp_path / "manila.toml"
    profile.write_text('engine = "ibm"\nbackend = "fake_manila"\n')
    wide = build_head_circuit(HeadConfig(qubits=6, encoders=0, measured=2, connectivity=1, reuploads=1, layers=1))
    with pytest.raises(QSetFitError, match="needs 6 qubits but backend 'fake_manila' has only 5"):
        make_engine(wide, str(profile))


def test_missing_credentials_fail_with_one_clear_message(small, monkeypatch):
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    for var in (credentials.TOKEN_VAR, credentials.INSTANCE_VAR, credentials.CHANNEL_VAR):
        monkeypatch.delenv(var, raising=False)

    def no_account(**kwargs):
        raise AccountNotFoundError("Unable to find account.")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", no_account)
    with pytest.raises(QSetFitError, match="save_account") as info:
        make_engine(small[0], "ibm-torino")
    assert credentials.TOKEN_VAR in str(info.value) and info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_environment_credentials_reach_the_service_and_never_the_message(small, monkeypatch):
    import qiskit_ibm_runtime

    monkeypatch.setenv(credentials.TOKEN_VAR, "s3cret-token")
    monkeypatch.setenv(credentials.INSTANCE_VAR, "my-instance")
    seen = {}

    def refused(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("401 unauthorized for token s3cret-token")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", refused)
    with pytest.raises(QSetFitError) as info:
        make_engine(small[0], "ibm-torino")
    assert seen == {"channel": "ibm_quantum_platform", "token": "s3cret-token", "instance": "my-instance"}
    assert "s3cret-token" not in str(info.value) and "my-instance" in str(info.value)
    assert "s3cret-token" not in repr(credentials.from_environment())


def test_real_device_path_passes_options_through(small):
    """A mocked service hands back a fake backend under a real name: the QPU code path without the network."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    class Service:
        def backend(self, name):
            assert name == "ibm_manila"
            return FakeManilaV2()

    profile = load_backend_profile("ibm-torino").replace(backend="ibm_manila", resilience_level=2, mode="session")
    engine = IBMRuntimeEngine(small[0], profile, service=Service(), twirling=True, dynamical_decoupling="XY4")
    assert not engine.local and engine.isa_circuit.num_qubits == 5
    options = engine.settings.options(local=False)
    assert options == {"default_shots": 4096, "resilience_level": 2,
                       "twirling": {"enable_gates": True, "enable_measure": True},
                       "dynamical_decoupling": {"enable": True, "sequence_type": "XY4"}}
    est = engine.estimator()
    assert est.options.resilience_level == 2 and est.options.twirling.enable_gates
    assert est.options.dynamical_decoupling.sequence_type == "XY4"
    engine.close()
    with pytest.raises(QSetFitError, match="shots or precision"):
        RuntimeSettings.from_profile(profile, {"precision": 0.01})


def test_model_evaluate_and_predict_on_a_fake_backend(monkeypatch):
    """QSetFitModel end to end (module 1 on torch, module 2 on Runtime local mode); the body is stubbed."""
    from qsetfit.data.datasets import Dataset
    from qsetfit.modeling import QSetFitModel

    model = QSetFitModel(HeadConfig.preset("tiny"), label_names=["negative", "positive"])
    rng = np.random.default_rng(2)
    monkeypatch.setattr(model, "embed", lambda texts, **kw: torch.tensor(rng.normal(size=(len(texts), 16))))
    data = Dataset(["good", "bad", "fine", "awful"], [1, 0, 1, 0], ["negative", "positive"])
    metrics = model.evaluate(data, backend="fake-torino")
    assert metrics["backend"] == "fake-torino" and metrics["n"] == 4 and 0 <= metrics["accuracy"] <= 1
    assert isinstance(model.head.quantum.engine, IBMRuntimeEngine) and model.head.quantum.engine.calls == 1
    assert set(model.predict(["ok", "meh"], backend="fake-torino")) <= {"negative", "positive"}


def test_compact_local_mode_has_the_fake_devices_asymmetric_readout(small):
    """Compact mode must carry the read-out error the fake device itself simulates: P(1|0) and P(0|1) apart."""
    from qsetfit.engines.aer.noise import fake_backend, readout_flips

    compact = make_engine(small[0], "fake-torino", seed=1)
    props = fake_backend("fake_torino").properties()
    flips = readout_flips(compact.mode_backend.options.noise_model, len(compact.used_qubits))
    expected = [(props.qubit_property(q, "prob_meas1_prep0")[0], props.qubit_property(q, "prob_meas0_prep1")[0])
                for q in compact.used_qubits]
    np.testing.assert_allclose(flips, expected, atol=1e-12)
    assert np.abs(flips[:, 0] - flips[:, 1]).max() > 1e-3  # the asymmetry is really there


# ---- network failure vs rejected key: only the HTTP transport is mocked, Runtime's own code runs ----------
FAKE_KEY = "not-a-real-key-123"


def _transport(monkeypatch, reply):
    """Every HTTP request (IAM, global search, Runtime) goes to ``reply(request)`` instead of the network."""
    import requests

    sent = []

    def send(adapter, request, **kwargs):
        sent.append(request.url)
        return reply(request)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    return sent


def _offline(request):
    import requests

    raise requests.ConnectionError("Failed to resolve 'iam.cloud.ibm.com' ([Errno -2] Name or service not known)",
                                   request=request)


def _iam_refuses(request):
    """What IBM Cloud IAM answers a wrong API key (HTTP 400, BXNIM0415E)."""
    import requests

    response = requests.Response()
    response.status_code, response.url, response.request = 400, request.url, request
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.",
                                    "context": {"requestId": "abc"}}).encode()
    return response


@pytest.mark.parametrize("instance", ["", "my-instance", "crn:v1:bluemix:public:quantum-computing:us-east:a/1:2::"])
def test_no_network_is_said_to_be_the_network_not_the_key(small, monkeypatch, instance):
    monkeypatch.setenv(credentials.TOKEN_VAR, FAKE_KEY)
    monkeypatch.setenv(credentials.INSTANCE_VAR, instance)
    sent = _transport(monkeypatch, _offline)
    with pytest.raises(QSetFitError) as info:
        make_engine(small[0], "ibm-torino")
    message = str(info.value)
    assert sent and message.startswith("could not reach IBM Quantum (iam.cloud.ibm.com: could not resolve")
    assert "credentials were not checked" in message and "invalid" not in message and "valid API" not in message
    assert FAKE_KEY not in message and "\n" not in message


@pytest.mark.parametrize("instance", ["", "my-instance"])
def test_a_refused_key_is_said_to_be_the_key(small, monkeypatch, instance):
    monkeypatch.setenv(credentials.TOKEN_VAR, FAKE_KEY)
    monkeypatch.setenv(credentials.INSTANCE_VAR, instance)
    _transport(monkeypatch, _iam_refuses)
    with pytest.raises(QSetFitError) as info:
        make_engine(small[0], "ibm-torino")
    message = str(info.value)
    assert message.startswith(f"IBM Quantum rejected the API key in {credentials.TOKEN_VAR} (HTTP 400: "
                              "Provided API key could not be found.")
    assert "could not reach" not in message and FAKE_KEY not in message and "\n" not in message


def test_a_truncated_crn_is_named_before_runtime_sees_it(small, monkeypatch):
    """Runtime reads the region from the CRN's sixth field: 'NoneType' object has no attribute 'group' before."""
    monkeypatch.setenv(credentials.TOKEN_VAR, FAKE_KEY)
    monkeypatch.setenv(credentials.INSTANCE_VAR, "crn:v1:bluemix:public:quantum-computing")
    sent = _transport(monkeypatch, _offline)
    with pytest.raises(QSetFitError, match="is not a complete CRN \\(expected crn:v1:bluemix") as info:
        make_engine(small[0], "ibm-torino")
    assert "NoneType" not in str(info.value) and not sent


def test_cli_says_network_in_one_line(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from qsetfit.cli import app

    monkeypatch.setenv(credentials.TOKEN_VAR, FAKE_KEY)
    monkeypatch.setenv(credentials.INSTANCE_VAR, "my-instance")
    _transport(monkeypatch, _offline)
    (tmp_path / "config.json").write_text(json.dumps({"head": SMALL.to_dict()}))
    result = CliRunner().invoke(app, ["predict", str(tmp_path), "text", "--backend", "ibm-torino", "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output and FAKE_KEY not in result.output
    assert "error: could not reach IBM Quantum" in " ".join(result.output.split())


def test_backend_lookup_offline_is_said_to_be_the_network(small):
    """The service was built, then the network went: Runtime's RequestsApiError wraps the ConnectionError."""
    import requests
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    class Service:
        def backend(self, name):
            try:
                raise requests.ConnectionError("Connection refused")
            except requests.ConnectionError as exc:
                raise RequestsApiError("'Connection refused'") from exc

    with pytest.raises(QSetFitError, match="could not reach IBM Quantum \\(the IBM Cloud API: connection refused\\)"):
        IBMRuntimeEngine(small[0], load_backend_profile("ibm-torino"), service=Service())


# ---- local testing mode cost and progress (issue 12 item 8) -------------------------------------------------
def test_compact_mode_transpiles_once_and_reports_the_layout(small, monkeypatch):
    """The layout comes from the one transpile that built the ISA circuit (a second level-3 transpile cost seconds)."""
    from qiskit.transpiler import PassManager

    runs = []
    original = PassManager.run

    def counting(self, circuits, *args, **kwargs):
        runs.append(1)
        return original(self, circuits, *args, **kwargs)

    monkeypatch.setattr(PassManager, "run", counting)
    engine = make_engine(small[0], "fake-torino", seed=3)
    assert len(runs) == 1
    assert len(engine.physical_qubits) == 3 and set(engine.physical_qubits) <= set(engine.used_qubits)


def test_progress_stages_reach_stderr_and_not_with_json(small, capsys):
    from qsetfit.cli.common import engine_progress

    x, w = torch.tensor(small[1][:1]), torch.tensor(small[2])
    with engine_progress(True):
        make_engine(small[0], "fake-torino", seed=3, shots=64)(x, w)
    err = capsys.readouterr().err
    assert "qsetfit: transpiling the 3-qubit head for fake_torino (level 3)" in err
    assert "qsetfit: building fake_torino's noise model" in err
    assert "qsetfit: running 1 input(s) x 64 shots" in err and "density_matrix on 3 qubits" in err
    with engine_progress(False):
        make_engine(small[0], "fake-torino", seed=3, shots=64)(x, w)
    assert capsys.readouterr().err == ""


def _assert_narrow_and_exact(engine, hc, seed):
    """A narrow engine: its ISA circuit is exactly the head's width on connected device qubits, with exact values."""
    import rustworkx as rx

    from qsetfit.engines.aer.noise import fake_backend

    assert engine.local_kind == "narrow" and engine.isa_circuit.num_qubits == hc.num_qubits
    assert set(engine.physical_qubits) == set(engine.used_qubits)
    graph = fake_backend("fake_torino").coupling_map.graph.to_undirected()
    assert rx.is_connected(graph.subgraph(engine.used_qubits))
    rng = np.random.default_rng(seed)
    x, w = rng.uniform(-1, 1, (2, len(hc.inputs))), rng.uniform(-np.pi, np.pi, len(hc.weights))
    exact = make_engine(hc, "torch")(torch.tensor(x), torch.tensor(w)).detach().numpy()
    assert np.abs(_isa_exact(engine, x, w) - exact).max() <= 1e-8


def test_narrow_local_mode_routes_within_the_heads_width():
    """The paper's 10-qubit head borrows a 12-qubit heavy-hex ring on fake_torino; "narrow" stays on 10 qubits."""
    hc = build_head_circuit(HeadConfig.preset("paper-10q-single"))
    compact = make_engine(hc, "fake-torino", noise=False)
    narrow = make_engine(hc, "fake-torino", noise=False, local="narrow")
    assert compact.isa_circuit.num_qubits > hc.num_qubits
    assert set(narrow.used_qubits) <= set(compact.used_qubits)
    _assert_narrow_and_exact(narrow, hc, seed=1)


def test_fake_torino_fast_profile_is_narrow_local_mode():
    """The shipped profile selects "narrow" as data: the 10-qubit head stays on 10 connected device qubits."""
    assert load_backend_profile("fake-torino-fast").local == "narrow"
    hc = build_head_circuit(HeadConfig.preset("paper-10q-single"))
    _assert_narrow_and_exact(make_engine(hc, "fake-torino-fast", noise=False), hc, seed=2)


def test_local_mode_is_refused_on_a_real_device_and_keys_the_ledger(small, tmp_path):
    hc, x, w = small
    with pytest.raises(QSetFitError, match=r"local = 'narrow' is for local testing mode on a fake backend.*"
                                           r"'ibm_torino' is a real device"):
        IBMRuntimeEngine(hc, load_backend_profile("ibm-torino").replace(local="narrow"))
    compact = make_engine(hc, "fake-torino", noise=False, shots=64, seed=1, ledger=tmp_path)
    compact(torch.tensor(x), torch.tensor(w))
    narrow = make_engine(hc, "fake-torino-fast", noise=False, shots=64, seed=1, ledger=tmp_path)
    narrow(torch.tensor(x), torch.tensor(w))  # not the compact job's stored result: another circuit
    assert compact.calls == narrow.calls == 1
    again = make_engine(hc, "fake-torino-fast", noise=False, shots=64, seed=1, ledger=tmp_path)
    again(torch.tensor(x), torch.tensor(w))
    assert again.calls == 0


def test_device_noise_is_built_for_the_used_qubits_only(monkeypatch):
    """Building all 133 fake_torino qubits took ~4.5 s per process; the cut-down target gives the same errors."""
    from qiskit_aer.noise import NoiseModel

    from qsetfit.engines.aer import noise
    from qsetfit.profiles import NoiseProfile

    device = NoiseProfile(name="fake_manila", kind="device", backend="fake_manila")
    reference = NoiseModel.from_backend(noise.fake_backend("fake_manila"))  # the whole device
    widths = []
    original = NoiseModel.from_backend.__func__

    def recording(cls, backend, **kwargs):
        widths.append(backend.target.num_qubits)
        return original(cls, backend, **kwargs)

    monkeypatch.setattr(NoiseModel, "from_backend", classmethod(recording))
    noise._device_noise_on.cache_clear()
    model = noise.build_noise_model(device, [2, 1])  # device qubit 2 -> 0, 1 -> 1
    assert widths == [2]
    assert set(model._local_quantum_errors["cx"]) == {(0, 1), (1, 0)}
    for gate, table in model._local_quantum_errors.items():
        for qubits, error in table.items():
            assert error == reference._local_quantum_errors[gate][tuple([2, 1][q] for q in qubits)]
    assert model._local_readout_errors.keys() == {(0,), (1,)}
