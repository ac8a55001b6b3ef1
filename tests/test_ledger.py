"""The job ledger: records, resume after a crash between submit and fetch, bounded retries, CLI, dry runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from qsetfit import HeadConfig, QSetFitError, build_head_circuit
from qsetfit.cli.jobs import jobs_app
from qsetfit.engines.ibm.cost import dry_run, format_dry_run
from qsetfit.engines.ibm.runtime import IBMRuntimeEngine
from qsetfit.engines.ibm.ledger import Ledger, array_hash
from qsetfit.profiles import load_backend_profile

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:The resilience_level option has no effect")
SMALL = HeadConfig(qubits=3, encoders=0, measured=2, connectivity=1, reuploads=1, layers=1)


class Service:
    """``QiskitRuntimeService`` at its network boundary: a fake device under a real name, jobs kept by id."""

    def __init__(self):
        from qiskit_ibm_runtime.fake_provider import FakeManilaV2

        self.device = FakeManilaV2()
        self.kept = {}
        self.job_calls = 0

    def backend(self, name):
        assert name == "ibm_manila"
        return self.device

    def job(self, job_id):
        self.job_calls += 1
        return self.kept[job_id]


@pytest.fixture(scope="module")
def setup():
    hc = build_head_circuit(SMALL)
    rng = np.random.default_rng(3)
    profile = load_backend_profile("ibm-torino").replace(backend="ibm_manila", shots=1024)
    return hc, profile, rng.uniform(-1, 1, (3, 3)), rng.uniform(-np.pi, np.pi, len(hc.weights))


def test_records_hash_and_never_store_tokens(tmp_path):
    ledger = Ledger(tmp_path)
    x, w = np.ones((2, 3)), np.zeros(5)
    ledger.record(job_id="j1", backend="ibm_x", mode="batch", pub_shapes=[[2, 1, 8]], inputs=x, weights=w)
    with pytest.raises(QSetFitError, match="credentials"):
        ledger.record(job_id="j2", backend="b", mode="batch", pub_shapes=[], inputs=x, weights=w, api_token="t")
    (job,) = ledger.jobs()
    assert job["state"] == "submitted" and job["inputs_sha256"] == array_hash(x) and job["pub_shapes"] == [[2, 1, 8]]
    assert ledger.lookup("ibm_x", x, w)["job_id"] == "j1" and ledger.lookup("ibm_x", x + 1, w) is None
    ledger.store_result("j1", np.arange(4.0).reshape(2, 2))
    assert ledger.jobs()[0]["state"] == "fetched" and ledger.result("j1").tolist() == [[0, 1], [2, 3]]
    with open(ledger.path, "a") as fh:
        fh.write('{"event": "fetch')  # torn by a crash mid-write
    assert len(ledger.jobs()) == 1


def test_resume_after_a_crash_between_submit_and_fetch(setup, tmp_path):
    hc, profile, x, w = setup
    service = Service()
    first = IBMRuntimeEngine(hc, profile, service=service, ledger=tmp_path)
    job = first.submit(x, w)  # submitted... then the process dies before job.result()
    service.kept[job.job_id()] = job
    expected = np.asarray(job.result()[0].data.evs)
    del first

    second = IBMRuntimeEngine(hc, profile, service=service, ledger=str(tmp_path))  # a new shell
    out = second(torch.tensor(x), torch.tensor(w)).numpy()
    assert second.calls == 0 and service.job_calls == 1  # fetched by id, not resubmitted
    assert np.array_equal(out, expected)
    (entry,) = Ledger(tmp_path).jobs()
    assert entry["state"] == "fetched" and entry["local"] is False and entry["mode"] == "batch"
    again = second(torch.tensor(x), torch.tensor(w)).numpy()
    assert np.array_equal(again, expected) and service.job_calls == 1 and second.calls == 0  # stored result

    result = CliRunner().invoke(jobs_app, ["list", str(tmp_path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["state"] == "fetched"


def test_failed_jobs_are_retried_a_bounded_number_of_times(setup, tmp_path):
    hc, profile, x, w = setup

    class FailingJob:
        count = 0

        def __init__(self):
            FailingJob.count += 1
            self.id = f"bad{FailingJob.count}"

        def job_id(self):
            return self.id

        def result(self):
            raise RuntimeError("Job failed: calibration in progress")

    class Estimator:
        def run(self, pubs):
            return FailingJob()

    engine = IBMRuntimeEngine(hc, profile, service=Service(), ledger=tmp_path, retries=2)
    engine.estimator = lambda: Estimator()
    with pytest.raises(QSetFitError, match="3 Runtime job\\(s\\) failed.*calibration"):
        engine(torch.tensor(x), torch.tensor(w))
    jobs = Ledger(tmp_path).jobs()
    assert [j["state"] for j in jobs] == ["failed"] * 3 and engine.calls == 3


def test_cli_status_and_fetch(setup, tmp_path, monkeypatch):
    hc, profile, x, w = setup
    service = Service()
    engine = IBMRuntimeEngine(hc, profile, service=service, ledger=tmp_path)
    job = engine.submit(x, w)
    service.kept[job.job_id()] = job
    import qsetfit.engines.ibm.credentials

    monkeypatch.setattr(qsetfit.engines.ibm.credentials, "runtime_service", lambda **kw: service)
    runner = CliRunner()
    status = runner.invoke(jobs_app, ["status", str(tmp_path), "--json"])
    assert status.exit_code == 0 and json.loads(status.stdout)[0]["state"] == "submitted"
    fetched = runner.invoke(jobs_app, ["fetch", str(tmp_path), "--json"])
    assert fetched.exit_code == 0 and json.loads(fetched.stdout) == [{"job_id": job.job_id(), "result": "fetched"}]
    assert Ledger(tmp_path).result(job.job_id()).shape == (3, 2)
    missing = runner.invoke(jobs_app, ["list", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no job ledger" in missing.output


def test_dry_run_submits_nothing(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"head": SMALL.to_dict()}))
    report = dry_run(tmp_path, "fake-fez", n_inputs=10)
    assert report["total_shots"] == 10 * 4096 and report["pubs"] == 1 and report["local_testing"]
    assert len(set(report["physical_qubits"])) == 3 and report["two_qubit_gates"] > 0
    assert 0.5 < report["success_probability"] < 1 and report["qpu_seconds"] > 0
    assert "nothing submitted" in format_dry_run(report)
    wide = HeadConfig(qubits=6, encoders=0, measured=2, connectivity=1, reuploads=1, layers=1)
    (tmp_path / "config.json").write_text(json.dumps({"head": wide.to_dict()}))
    manila = tmp_path / "manila.toml"
    manila.write_text('engine = "ibm"\nbackend = "fake_manila"\n')
    with pytest.raises(QSetFitError, match="needs 6 qubits"):
        dry_run(tmp_path, str(manila))
