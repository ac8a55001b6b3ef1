"""Run-directory files: atomic writes, exact round trips, and one clear error for a missing or damaged file.

(test_modeling.py covers a failing rename and file permissions of ``atomic_write_bytes``.)
"""

from __future__ import annotations

import csv
import json
import os
import pickle  # only to build a hostile file that must never be unpickled
from pathlib import Path

import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from safetensors import safe_open

from qsetfit import QSetFitError
from qsetfit.io import persistence as ps
from tests.helpers import seeded


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("interrupt", [OSError("disk full"), KeyboardInterrupt()])
def test_a_writer_failing_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, interrupt):
    target = tmp_path / "metrics.json"
    ps.write_json(target, {"epoch": 1})
    old = target.read_bytes()

    def fail(fd):
        raise interrupt

    monkeypatch.setattr(os, "fsync", fail)  # the bytes are written, not yet durable
    with pytest.raises(type(interrupt)):
        ps.write_json(target, {"epoch": 2})
    with pytest.raises(type(interrupt)):
        ps.atomic_write_bytes(tmp_path / "new.bin", b"x" * 4096)
    assert target.read_bytes() == old
    assert _files(tmp_path) == ["metrics.json"]  # neither a partial new.bin nor a .tmp


def test_atomic_write_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    ps.atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and _files(target.parent) == ["file.bin"]


def test_json_round_trips_exactly_and_is_stable_text(tmp_path):
    value = {"z": [0.1, 1e-300, -2.5e17, 3], "a": {"nested": [True, None, "é ✓"]}, "m": 1 / 3}
    ps.write_json(tmp_path / "v.json", value)
    assert ps.read_json(tmp_path / "v.json") == value
    text = (tmp_path / "v.json").read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"m"') < text.index('"z"')  # sorted keys


def test_missing_and_damaged_json_are_named(tmp_path):
    with pytest.raises(QSetFitError, match=rf"{tmp_path / 'config.json'} is missing; is {tmp_path} a qsetfit run"):
        ps.read_json(tmp_path / "config.json")
    (tmp_path / "config.json").write_text('{"qubits": 4,')
    with pytest.raises(QSetFitError, match=r"config\.json is not valid JSON \(.*\); the file is damaged"):
        ps.read_json(tmp_path / "config.json")


def test_tensors_round_trip_bit_exactly_with_their_dtypes_and_metadata(tmp_path):
    g = seeded(3)
    base = torch.randn(4, 6, dtype=torch.float64, generator=g)
    tensors = {
        "w64": base,
        "w32": torch.randn(5, generator=g),
        "half": torch.randn(3, generator=g).to(torch.bfloat16),
        "ids": torch.arange(7, dtype=torch.int64) - 3,
        "mask": torch.tensor([True, False, True]),
        "strided": base.T,  # not contiguous
        "param": torch.nn.Parameter(torch.randn(2, generator=g)),  # requires grad
        "tiny": torch.tensor([5e-324, float("inf"), -0.0], dtype=torch.float64),
    }
    path = tmp_path / "head.safetensors"
    ps.write_tensors(path, tensors, metadata={"format": "1"})
    back = ps.read_tensors(path)
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v.detach()), k
    assert torch.equal(back["tiny"].view(torch.int64), tensors["tiny"].view(torch.int64))  # -0.0 stays -0.0
    with safe_open(str(path), framework="pt") as fh:
        assert fh.metadata() == {"format": "1"}


def test_truncated_or_missing_safetensors_are_refused_by_name(tmp_path):
    path = tmp_path / "head.safetensors"
    ps.write_tensors(path, {"w": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(QSetFitError, match=r"head\.safetensors is not a readable safetensors file"):
        ps.read_tensors(path)
    with pytest.raises(QSetFitError, match=r"weights\.safetensors is missing; is .* a qsetfit run directory"):
        ps.read_tensors(tmp_path / "weights.safetensors")


class _Hostile:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["HOSTILE_MARK"]),))


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_run(tmp_path, monkeypatch):
    mark = tmp_path / "executed"
    monkeypatch.setenv("HOSTILE_MARK", str(mark))
    path = tmp_path / "head.safetensors"
    path.write_bytes(pickle.dumps({"w": _Hostile()}))
    with pytest.raises(QSetFitError, match="is not a readable safetensors file"):
        ps.read_tensors(path)
    assert not mark.exists()


def test_adam_state_round_trips_through_files_and_resumes_identically(tmp_path):
    """Saved mid-training and restored into a fresh optimiser, the next steps equal the uninterrupted run's."""

    def make():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2).double()
        return model, torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)

    x = torch.randn(8, 3, dtype=torch.float64, generator=seeded(4))

    def step(model, opt):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()

    model, opt = make()
    for _ in range(3):
        step(model, opt)
    tensors, meta = ps.optimizer_to_tensors(opt.state_dict())
    ps.write_tensors(tmp_path / "optim.safetensors", tensors)
    ps.write_json(tmp_path / "optim.json", meta)
    ps.write_tensors(tmp_path / "model.safetensors", model.state_dict())
    for _ in range(2):
        step(model, opt)

    resumed, opt2 = make()
    resumed.load_state_dict(ps.read_tensors(tmp_path / "model.safetensors"))
    opt2.load_state_dict(ps.optimizer_from_tensors(ps.read_tensors(tmp_path / "optim.safetensors"),
                                                   ps.read_json(tmp_path / "optim.json")))
    for _ in range(2):
        step(resumed, opt2)
    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_history_is_csv_and_an_empty_history_writes_nothing(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5, "val_acc": 0.75}, {"epoch": 2, "loss": 0.25, "val_acc": 0.875}]
    ps.write_history(tmp_path / "history.csv", rows)
    with (tmp_path / "history.csv").open() as fh:
        back = list(csv.DictReader(fh))
    assert [{k: float(v) for k, v in r.items()} for r in back] == rows
    ps.write_history(tmp_path / "empty.csv", [])
    assert not (tmp_path / "empty.csv").exists()


def test_circuits_round_trip_through_qpy(tmp_path):
    x = ParameterVector("x", 2)
    qc = QuantumCircuit(2, name="head")
    qc.ry(2 * x[0] + 0.1, 0)
    qc.cx(0, 1)
    qc.rz(x[1], 1)
    ps.write_circuit(tmp_path / "circuit.qpy", qc)
    assert ps.read_circuit(tmp_path / "circuit.qpy") == qc
    with pytest.raises(QSetFitError, match="circuit.qpy is missing"):
        ps.read_circuit(tmp_path / "other" / "circuit.qpy")


def test_a_damaged_qpy_file_is_refused_by_name(tmp_path):
    path = tmp_path / "circuit.qpy"
    qc = QuantumCircuit(1)
    qc.h(0)
    ps.write_circuit(path, qc)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(QSetFitError, match="circuit.qpy"):
        ps.read_circuit(path)


def _identity(saved):
    return {"grid": saved["grid"], "seed": saved["seed"]}


def test_read_resumable_accepts_the_same_settings_and_names_the_ones_that_differ(tmp_path):
    path = tmp_path / "partial.json"
    assert ps.read_resumable(path, _identity, {"grid": (1, 2), "seed": 0}) is None
    ps.write_json(path, {"grid": [1, 2], "seed": 0, "rows": [[0.5]]})
    assert ps.read_resumable(path, _identity, {"grid": (1, 2), "seed": 0})["rows"] == [[0.5]]  # tuples as lists
    with pytest.raises(QSetFitError, match=r"another head, data or grid settings \(differing: grid, seed\)"):
        ps.read_resumable(path, _identity, {"grid": (1, 3), "seed": 1})
    path.write_text(json.dumps({"seed": 0}))
    with pytest.raises(QSetFitError, match=r"cannot resume from .*partial\.json: 'grid'; remove it"):
        ps.read_resumable(path, _identity, {"grid": (1, 2), "seed": 0})
    path.write_text("{not json")
    with pytest.raises(QSetFitError, match="cannot resume from"):
        ps.read_resumable(path, _identity, {"grid": (1, 2), "seed": 0})
