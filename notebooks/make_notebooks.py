"""Writes the three notebooks of this folder, without outputs: this file is their source.

Edit a cell here, then run ``.venv/bin/python notebooks/make_notebooks.py`` (``--check`` only reports
notebooks that differ from this file; ``tests/test_notebooks.py`` runs that check). Each notebook opens
with what it shows and how long it takes, then one cell tagged ``parameters`` holding every setting a user
would change; the tests inject a cell after it with small settings (papermill's convention).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
PARAMETERS = "parameters"

QUICKSTART = [
    ("md", """# Quickstart: a quantum classification head on frozen sentence embeddings

The whole qsetfit pipeline on the 400-sentence sentiment set shipped with the package, offline:

1. embed the sentences with a frozen sentence transformer (the packaged all-MiniLM-L6-v2, 384 dimensions);
2. build the paper's 10-qubit hybrid head: module 1 (classical amplitude encoders), module 2 (a Qiskit
   circuit), a linear layer;
3. train it on the exact **torch** engine, then train it on Aer (**aer-exact**) and see the two agree;
4. evaluate the trained weights with module 2 on several simulators, predict, save and load.

**Time:** about 1 minute on 2 CPU cores (the first run also embeds the 400 sentences, ~10 s)."""),
    ("parameters", """PRESET = "paper-10q-single"      # the head: "paper-10q-single", "paper-14q-multi" (slower) or "tiny"
EPOCHS = 15                      # training epochs on the torch engine
AER_TRAIN_SIZE = 64              # the aer-exact run trains on this many sentences...
AER_EPOCHS = 1                   # ...for this many epochs (~5 s per batch of 16 at 10 qubits)
BACKENDS = ["torch", "aer-exact", "aer-shots", "aer-depolarizing"]  # where module 2 runs at test time
RUN_DIR = "runs/01_quickstart"   # the saved model
THREADS = 1                      # torch threads: 1 is fastest for small heads and on a busy machine"""),
    ("code", """import time

import torch
from IPython.display import Image

from qsetfit import HeadConfig, HybridHead
from qsetfit.data import demo_dataset
from qsetfit.data.embeddings import embed
from qsetfit.modeling import QSetFitModel
from qsetfit.training.head_trainer import Trainer
from qsetfit.training.arguments import TrainingArguments

torch.set_num_threads(THREADS)"""),
    ("md", """## 1. Data and embeddings

`demo_dataset()` splits the packaged sentences 70/15/15 with a fixed seed. `embed` runs the frozen body once
per sentence and caches the vectors on disk (`$QSETFIT_CACHE`, default `~/.cache/qsetfit`): re-running
encodes nothing."""),
    ("code", """data = demo_dataset()
print(len(data.train), "train /", len(data.validation), "validation /", len(data.test), "test; labels",
      data.label_names)
print(repr(data.train.texts[0]), "->", data.label_names[data.train.labels[0]])"""),
    ("code", """x_train = torch.as_tensor(embed(data.train.texts, show_progress=False), dtype=torch.float64)  # (280, 384)
y_train = torch.tensor(data.train.labels)
print("embeddings:", tuple(x_train.shape), x_train.dtype)"""),
    ("md", """## 2. The head

`HeadConfig.preset(...)` holds every knob of the paper's heads. A `QSetFitModel` is the frozen body plus
`model.head`, a `HybridHead` (a torch `nn.Module`): embeddings -> module 1 -> module 2 -> linear -> logits.
Module 2 is one Qiskit `QuantumCircuit`; every engine executes that one definition."""),
    ("code", """config = HeadConfig.preset(PRESET)
model = QSetFitModel(config, label_names=data.label_names)
circuit = model.head.quantum.head_circuit.circuit
print(config.parameter_counts())
print(f"module 2: {circuit.num_qubits} qubits, depth {circuit.depth()}, gates {dict(circuit.count_ops())}")
logits, loss = model.head(x_train[:4], y_train[:4])  # (4, 2) logits of the untrained head, and the loss
print(logits.detach().numpy().round(3), f"loss {loss.item():.3f}")"""),
    ("md", """## 3. Train on the torch engine

The torch engine compiles the circuit once into batched statevector kernels and differentiates it exactly.
`fit` embeds (from the cache), runs AdamW with a cosine schedule, keeps the epoch with the best validation
accuracy and saves the run directory."""),
    ("code", """args = TrainingArguments(epochs=EPOCHS, batch_size=16, learning_rate=0.05, seed=0)
start = time.perf_counter()
result = model.fit(data.train, data.validation, args=args, run_dir=RUN_DIR, progress=False)
print(f"trained in {time.perf_counter() - start:.0f} s; best epoch {result.best_epoch}, "
      f"validation accuracy {result.best_validation['accuracy']:.3f}; saved to {RUN_DIR}")
Image(filename=f"{RUN_DIR}/learning_curve.png")"""),
    ("md", """## 4. Train on Aer (`aer-exact`)

The same circuit on qiskit-aer through `EstimatorQNN`, with parameter-shift gradients (every shifted binding
of a batch goes out in one estimator call). It is far slower than the torch engine, so both train the same
fresh head on a small subset: with the same seed they reach the same weights."""),
    ("code", """subset = (x_train[:AER_TRAIN_SIZE], y_train[:AER_TRAIN_SIZE])
trained = {}
for engine in ("torch", "aer-exact"):
    head = HybridHead(config, seed=0)
    start = time.perf_counter()
    aer_args = TrainingArguments(epochs=AER_EPOCHS, batch_size=16, learning_rate=0.05, engine=engine)
    Trainer(head, aer_args, subset, progress=False).train()
    trained[engine] = torch.nn.utils.parameters_to_vector(head.parameters()).detach()
    print(f"{engine:9s} trained in {time.perf_counter() - start:5.1f} s")
difference = (trained["torch"] - trained["aer-exact"]).abs().max().item()
print(f"largest weight difference, torch vs aer-exact: {difference:.1e}")"""),
    ("md", """## 5. Evaluate: the same weights, module 2 on each backend

A backend is an engine name or a profile (`backends/*.toml`): `aer-shots` samples 1024 shots per sentence,
`aer-depolarizing` adds gate and readout noise (density matrix up to 8 qubits, noise trajectories above)."""),
    ("code", """for backend in BACKENDS:
    start = time.perf_counter()
    metrics = model.evaluate(data.test, backend=backend)
    print(f"{backend:18s} test accuracy {metrics['accuracy']:.3f}  loss {metrics['loss']:.4f}  "
          f"({time.perf_counter() - start:.1f} s)")"""),
    ("md", """## 6. Predict, save, load

The run directory holds `config.json`, `head.safetensors` and `circuit.qpy` (nothing is pickled);
`QSetFitModel.load` rebuilds the model from it."""),
    ("code", """texts = ["A quietly brilliant film.", "Two hours I will never get back."]
print(model.predict(texts))
loaded = QSetFitModel.load(RUN_DIR)
print(loaded.predict_proba(texts, backend="aer-shots").round(3))"""),
    ("md", """The same from a shell:

```bash
qsetfit train --data demo --preset paper-10q-single --epochs 15 --out runs/demo
qsetfit evaluate runs/demo --backend torch --backend aer-exact --backend aer-shots --backend aer-depolarizing
qsetfit predict runs/demo "A quietly brilliant film." --backend aer-shots
```"""),
]

NOISE = [
    ("md", """# Noise robustness: finite shots and depolarizing gate noise

How much of a trained head's accuracy survives what a QPU adds? This notebook trains the paper's 10-qubit
head on the packaged sentiment set, then evaluates the same weights with module 2 on Aer under

- **finite shots**: 64 to 4096 measured shots per sentence, and exact expectation values;
- **depolarizing noise**: a two-qubit error p2 after every CNOT (one-qubit p1 = p2 / 10), from 0 to 1e-2.

It calls `qsetfit.bench.noise.bench_noise`, the library behind `qsetfit bench noise`. Stochastic cells run
once per seed: the error bars are the standard deviation over seeds.

**Time:** 1 to 2 minutes on 2 CPU cores."""),
    ("parameters", """PRESET = "paper-10q-single"
EPOCHS = 15
SHOTS = [64, 256, 1024, 4096, "exact"]     # shots per sentence; "exact": exact expectation values
P2 = [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]   # two-qubit depolarizing rates (p1 = p2 / 10)
READOUT = 0.0                              # symmetric readout error added to every p2 cell
SEEDS = 3                                  # runs of each stochastic cell: the error bars
TRAJECTORIES = 100                         # noise trajectories per sentence above 8 qubits
FAKE_BACKENDS = []                         # e.g. ["fake_torino"]: device noise too (slow: ~1 s per sentence)
RUN_DIR = "runs/02_noise_robustness"
THREADS = 1"""),
    ("code", """from pathlib import Path

import torch
from IPython.display import Image, display

from qsetfit import HeadConfig
from qsetfit.data import demo_dataset
from qsetfit.modeling import QSetFitModel
from qsetfit.bench.noise import bench_noise
from qsetfit.training.arguments import TrainingArguments

torch.set_num_threads(THREADS)"""),
    ("md", """## 1. Train a head (torch engine, as in the quickstart)"""),
    ("code", """data = demo_dataset()
model = QSetFitModel(HeadConfig.preset(PRESET), label_names=data.label_names)
args = TrainingArguments(epochs=EPOCHS, batch_size=16, learning_rate=0.05, seed=0)
model.fit(data.train, data.validation, args=args, run_dir=RUN_DIR, progress=False)
print(model, f"validation accuracy {model.result.best_validation['accuracy']:.3f}")"""),
    ("md", """## 2. The sweeps

Every cell of the grid is a backend profile written to `RUN_DIR/noise/profiles/` (re-run any one with
`qsetfit evaluate RUN_DIR --backend RUN_DIR/noise/profiles/backends/p2-0.001.toml`). Only the sentences whose
prediction a cell *can* change are simulated (`simulated`): the logits are linear in module 2's read-out, so
a sentence whose class wins for every read-out the noise allows keeps it. That shortcut is exact.
`agreement` is the share of predictions equal to the noiseless ones; `method` says how Aer ran the cell."""),
    ("code", """out = Path(RUN_DIR) / "noise"
bench = bench_noise(RUN_DIR, out, data="demo", shots_grid=SHOTS, p2_grid=P2, readout=READOUT,
                    fake_backends=FAKE_BACKENDS, seeds=SEEDS, trajectories=TRAJECTORIES, progress=False)
print(f"{bench['n']} test sentences; noiseless module 2: accuracy {bench['exact_accuracy']:.3f}\\n")
print(f"{'cell':14} {'accuracy':>15} {'agreement':>9} {'simulated':>9}  method")
for c in bench["cells"]:
    print(f"{c['cell']:14} {c['accuracy']:7.3f} ± {c['accuracy_std']:.3f} {c['agreement']:9.3f} "
          f"{c['simulated']:9d}  {c['method']}")"""),
    ("md", """## 3. Plots

Accuracy (mean ± standard deviation over seeds) against each axis; the dashed line is the noiseless accuracy.
The PNGs, `noise.csv` and `noise.json` are in `RUN_DIR/noise/`."""),
    ("code", """for name in bench["files"]:
    if name.endswith(".png"):
        display(Image(filename=str(out / name)))"""),
    ("md", """On the demo set the final linear layer also reads module 1's features, so noise on module 2 flips few
predictions; on harder data (SST-2) more sentences sit near the decision boundary.

The same from a shell (add `--fake-backend fake_torino` for device noise):

```bash
qsetfit train --data demo --preset paper-10q-single --epochs 15 --out runs/demo
qsetfit bench noise runs/demo --data demo --out runs/demo-noise --seeds 3 \\
    --shots 64 --shots 256 --shots 1024 --shots 4096 --shots exact \\
    --p2 0 --p2 1e-4 --p2 3e-4 --p2 1e-3 --p2 3e-3 --p2 1e-2
```"""),
]

HARDWARE = [
    ("md", """# IBM Quantum hardware: dry run, then inference through Runtime

Module 2 of a trained head runs on IBM hardware through qiskit-ibm-runtime's `EstimatorV2`. This notebook
needs no account: the `fake-torino` profile uses Runtime's *local testing mode*, the real Runtime code path
with Aer and a snapshot of ibm_torino's noise. It trains a small head, runs a dry run (ISA depth, qubits,
success estimate, QPU time; nothing submitted), runs inference through Runtime, reads the job ledger, and
shows the one change for a real device.

**Time:** under a minute on 2 CPU cores."""),
    ("parameters", """PRESET = "tiny"                  # a small head; section 2 shows what the paper's 10-qubit head costs
HEAD = {"qubits": 6, "encoder_qubits": 6}  # HeadConfig fields overriding the preset ({}: the preset as is)
EPOCHS = 15
PROFILE = "fake-torino"          # a backend profile with engine = "ibm"; "fake-*" runs locally, no account
N_TEST = 60                      # test sentences sent through Runtime (one job)
RUN_DIR = "runs/03_ibm_hardware"
THREADS = 1"""),
    ("code", """import torch

from qsetfit import HeadConfig, QSetFitError, build_head_circuit, load_backend_profile
from qsetfit.data import demo_dataset
from qsetfit.engines.ibm.cost import dry_run, dry_run_report, format_dry_run
from qsetfit.engines.ibm.ledger import Ledger
from qsetfit.modeling import QSetFitModel
from qsetfit.training.arguments import TrainingArguments

torch.set_num_threads(THREADS)"""),
    ("md", """## 1. Train on the torch engine

The `ibm` engine is for inference: train on `torch`, then run the same weights on the device."""),
    ("code", """data = demo_dataset()
test = data.test.subset(range(min(N_TEST, len(data.test))))
model = QSetFitModel(HeadConfig.preset(PRESET, **HEAD), label_names=data.label_names)
args = TrainingArguments(epochs=EPOCHS, batch_size=16, learning_rate=0.05, seed=0)
model.fit(data.train, data.validation, args=args, run_dir=RUN_DIR, progress=False)
exact = model.evaluate(test)["accuracy"]
print(f"test accuracy with exact module 2: {exact:.3f} on {len(test)} sentences")"""),
    ("md", """## 2. Dry run

The circuit is transpiled to the backend's ISA (optimization level 3, fixed seed) and scored with the
backend's own gate and read-out errors and durations. Nothing is submitted. On a real device the same call
reads the device's current calibration."""),
    ("code", """profile = load_backend_profile(PROFILE)
print(profile.description)
print(format_dry_run(dry_run(RUN_DIR, PROFILE, n_inputs=len(test))))"""),
    ("md", """The paper's 10-qubit head on the same backend: routing its ring of CNOTs onto heavy-hex hardware
multiplies the two-qubit gates, and the success estimate drops accordingly. Its routed circuit also touches
more than 10 device qubits, too many for a density matrix, so local testing samples one noise trajectory per
shot: minutes per sentence on a laptop, about a second per sentence on the QPU."""),
    ("code", """paper = build_head_circuit(HeadConfig.preset("paper-10q-single"))
print(format_dry_run(dry_run_report(paper, profile, n_inputs=len(test))))"""),
    ("md", """## 3. Inference through Runtime

A loaded run records every Runtime job in `RUN_DIR/ledger.jsonl`; each `predict`/`evaluate` call is one job
(Batch mode, one PUB), and a repeated call with the same inputs and weights reuses the stored result."""),
    ("code", """loaded = QSetFitModel.load(RUN_DIR)
sample = test.texts[:3]
for text, label in zip(sample, loaded.predict(sample, backend=PROFILE)):
    print(f"{label:9s} {text}")
metrics = loaded.evaluate(test, backend=PROFILE)
print(f"{PROFILE}: test accuracy {metrics['accuracy']:.3f} (exact module 2: {exact:.3f})")"""),
    ("code", """for job in Ledger(RUN_DIR).jobs():
    where = "local testing" if job["local"] else "QPU"
    print(job["job_id"], job["backend"], job["mode"], where, "PUB shapes", job["pub_shapes"], job["state"])"""),
    ("md", """## 4. ▶ To use a real device

**Change `PROFILE` in the parameters cell to `"ibm-torino"`** (or to your own copy of
`backends/ibm-torino.toml` naming another backend), after saving an account once:

```python
from qiskit_ibm_runtime import QiskitRuntimeService
QiskitRuntimeService.save_account(channel="ibm_quantum_platform", token="<API key>", instance="<CRN>",
                                  set_as_default=True)
```

or set `QISKIT_IBM_TOKEN` and `QISKIT_IBM_INSTANCE`. Then run the notebook again: the dry run uses the
device's calibration and sections 3's calls go to the QPU. qsetfit never writes the token anywhere. Without
an account, a real-device profile stops with one message saying how to set it up:"""),
    ("code", """try:
    print(format_dry_run(dry_run(RUN_DIR, "ibm-torino", n_inputs=len(test))))  # submits nothing
except QSetFitError as exc:
    print("QSetFitError:", exc)"""),
    ("md", """The same from a shell:

```bash
qsetfit predict runs/demo "A quietly brilliant film." --backend fake-torino --dry-run
qsetfit evaluate runs/demo --backend fake-torino
qsetfit jobs list runs/demo
```"""),
]

NOTEBOOKS = {"01_quickstart.ipynb": QUICKSTART, "02_noise_robustness.ipynb": NOISE, "03_ibm_hardware.ipynb": HARDWARE}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """One notebook, outputs stripped, cell ids stable (``<stem>-<index>``) so the files do not churn."""
    nb = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    stem = name.split("_")[0]
    for i, (kind, source) in enumerate(cells):
        cell_id = f"nb{stem}-{i:02d}"
        if kind == "md":
            nb.cells.append(new_markdown_cell(source, id=cell_id))
        else:
            meta = {"tags": [PARAMETERS]} if kind == PARAMETERS else {}
            nb.cells.append(new_code_cell(source, id=cell_id, metadata=meta))
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    """The notebook's file text."""
    return nbformat.writes(build(name, NOTEBOOKS[name])) + "\n"


def main(argv: list[str]) -> int:
    """Write every notebook, or with ``--check`` list the ones that differ from this file (exit 1)."""
    stale = [name for name in NOTEBOOKS if not (HERE / name).is_file() or (HERE / name).read_text() != render(name)]
    if "--check" in argv:
        for name in stale:
            print(f"notebooks/{name} differs from notebooks/make_notebooks.py; run the script to rewrite it")
        return 1 if stale else 0
    for name in stale:
        (HERE / name).write_text(render(name))
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
