"""The notebooks run top to bottom (small settings injected after their ``parameters`` cell), and ship stripped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 240  # seconds per cell
KERNEL = "qsetfit-test-python"

# Small settings per notebook: a 4-qubit head, few epochs, short grids.
SMOKE: dict[str, dict[str, object]] = {
    "01_quickstart.ipynb": {"PRESET": "tiny", "EPOCHS": 2, "AER_TRAIN_SIZE": 32, "AER_EPOCHS": 1},
    "02_noise_robustness.ipynb": {"PRESET": "tiny", "EPOCHS": 2, "SHOTS": [64, 1024, "exact"], "P2": [0.0, 1e-3, 1e-2],
                                  "SEEDS": 2, "TRAJECTORIES": 10},
    "03_ibm_hardware.ipynb": {"PRESET": "tiny", "HEAD": {}, "EPOCHS": 2, "N_TEST": 16},
}


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def inject(nb: nbformat.NotebookNode, values: dict[str, object]) -> nbformat.NotebookNode:
    """Insert a cell assigning ``values`` right after the cell tagged ``parameters`` (papermill's convention)."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{key} = {value!r}" for key, value in values.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, id="injected-parameters",
                                                         metadata={"tags": ["injected-parameters"]}))
    return nb


def text_of(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed (streams and text/plain results)."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if out.output_type == "stream" else out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def has_image(cell: nbformat.NotebookNode) -> bool:
    return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec for this interpreter, and a HOME without a saved IBM Quantum account."""
    import matplotlib
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(path=str(root / "kernels" / KERNEL))
    home = tmp_path_factory.mktemp("home")
    return {"JUPYTER_PATH": str(root), "HOME": str(home), "MPLCONFIGDIR": matplotlib.get_cachedir(),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture
def run_notebook(kernel_env, tmp_path, monkeypatch):
    """Execute a notebook with its smoke settings (runs written under tmp_path); return the executed notebook."""
    from nbclient import NotebookClient

    for key, value in kernel_env.items():
        monkeypatch.setenv(key, value)
    for key in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL"):
        monkeypatch.delenv(key, raising=False)

    def run(name: str) -> nbformat.NotebookNode:
        nb = inject(_read(name), SMOKE[name] | {"RUN_DIR": str(tmp_path / "run")})
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        client.execute()
        return nb

    return run


def find(nb: nbformat.NotebookNode, needle: str) -> nbformat.NotebookNode:
    """The first code cell whose source contains ``needle``."""
    return next(c for c in nb.cells if c.cell_type == "code" and needle in c.source)


def test_quickstart(run_notebook):
    nb = run_notebook("01_quickstart.ipynb")
    assert has_image(find(nb, "model.fit("))
    difference = float(re.search(r"torch vs aer-exact: (\S+)", text_of(find(nb, "parameters_to_vector"))).group(1))
    assert difference < 1e-6
    printed = text_of(find(nb, "for backend in BACKENDS"))
    for backend in ("torch", "aer-exact", "aer-shots", "aer-depolarizing"):
        assert re.search(rf"^{backend} +test accuracy [01]\.\d{{3}}", printed, re.M), printed
    assert re.search(r"\['(positive|negative)', '(positive|negative)'\]", text_of(find(nb, "model.predict(texts)")))


def test_noise_robustness(run_notebook):
    nb = run_notebook("02_noise_robustness.ipynb")
    printed = text_of(find(nb, "bench_noise("))
    for cell in ("shots-64", "shots-1024", "shots-exact", "p2-0 ", "p2-0.001", "p2-0.01"):
        assert cell in printed, printed
    assert "noiseless module 2: accuracy" in printed
    plots = find(nb, "display(Image")
    assert sum("image/png" in out.get("data", {}) for out in plots.outputs) == 2  # shots and p2


def test_ibm_hardware(run_notebook):
    nb = run_notebook("03_ibm_hardware.ipynb")
    assert "dry run on fake_torino (batch mode, local testing): nothing submitted" in text_of(
        find(nb, "dry_run(RUN_DIR, PROFILE"))
    assert "estimated QPU time" in text_of(find(nb, "dry_run_report(paper"))
    assert re.search(r"fake-torino: test accuracy [01]\.\d{3}", text_of(find(nb, "loaded.evaluate(test")))
    assert "fake_torino batch local testing" in text_of(find(nb, "Ledger(RUN_DIR)"))
    failure = text_of(find(nb, '"ibm-torino"'))
    assert failure.startswith("QSetFitError: no IBM Quantum credentials found") and "save_account" in failure


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_committed_notebooks_are_stripped(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.cells[0].cell_type == "markdown" and "**Time:**" in nb.cells[0].source
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])] == [code[0]]
    assert set(SMOKE[name]) <= set(re.findall(r"^([A-Z_0-9]+) =", code[0].source, re.M))


def test_notebooks_match_their_generator():
    done = subprocess.run([sys.executable, str(NOTEBOOKS / "make_notebooks.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
