"""The Hugging Face ecosystem's model API for ``QSetFitModel``: save_pretrained, from_pretrained, push_to_hub.

Everything that touches the Hub goes through ``huggingface_hub`` (``snapshot_download``, ``HfApi.create_repo``,
``HfApi.upload_folder``); tokens come from its own login (``hf auth login`` or ``HF_TOKEN``) or the ``token``
argument, and are never written to a file. The model card is the run directory's ``README.md``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Protocol, TypeVar

from qsetfit.io import persistence
from qsetfit.errors import QSetFitError

# A QSetFitModel: not imported, because modeling.py calls this module (one direction of import only).
QSetFitModel = Any


class _Loadable(Protocol):
    """What ``from_pretrained`` needs of the model class: ``load(run_dir)``."""

    @classmethod
    def load(cls, run_dir: str | Path) -> Any: ...


M = TypeVar("M", bound=_Loadable)

logger = logging.getLogger(__name__)

MODEL_CARD = "README.md"
# Never uploaded: the resumable training checkpoint (optimizer state), temporary and lock files.
IGNORE_PATTERNS = ["checkpoint/*", "checkpoint/**", ".*", "**/.*", "*.tmp", "*.lock"]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(model: QSetFitModel, *, repo_id: str | None = None) -> str:
    """README.md text: YAML metadata, body, head, parameter counts, metrics with intervals, arguments, usage."""
    from huggingface_hub import ModelCardData

    base = model.base_body or model.body
    data = ModelCardData(
        library_name="qsetfit",
        pipeline_tag="text-classification",
        tags=["qsetfit", "setfit", "quantum-machine-learning", "qiskit", "text-classification"],
        base_model=base if "/" in base and not Path(base).exists() else None,
    )
    lines = [
        f"# qsetfit model{f': {repo_id}' if repo_id else ''}",
        "",
        "A hybrid quantum classification head (Qiskit circuit, trained with qsetfit) on a sentence-transformer body.",
        "",
    ]
    lines += _body_section(model, base) + _head_section(model) + _metrics_section(model)
    lines += _usage_section(model, repo_id)
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)


def _body_section(model: QSetFitModel, base: str) -> list[str]:
    """The body: its base, and how it was tuned (with the tuned weights' hash) or that it stayed frozen."""
    lines = ["## Body", "", f"- base body: `{base}`"]
    if model.body_tuning is None:
        return [*lines, "- frozen (not tuned)"]
    marker = persistence.read_json(Path(model.body) / "qsetfit-body.json")
    return [
        *lines,
        f"- tuned contrastively with setfit (phase 1), saved in `body/` (safetensors), weights "
        f"sha256 `{marker.get('weights_sha256', '?')}`",
        f"- body tuning: `{model.body_tuning.to_dict()}`",
    ]


def _head_section(model: QSetFitModel) -> list[str]:
    """The head: labels, width, configuration and trainable parameters (when they can be counted)."""
    head = model.head
    input_dim = getattr(head, "input_dim", None) if head is not None else None
    try:
        counts = model.config.parameter_counts(input_dim)
    except QSetFitError:
        counts = {}
    lines = [
        "",
        "## Head",
        "",
        f"- labels: {model.label_names}",
        f"- qubits: {model.config.qubits}",
        f"- configuration: `{model.config.to_dict()}`",
    ]
    if counts:
        lines.append("- trainable parameters: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return lines


def _metrics_section(model: QSetFitModel) -> list[str]:
    """Test accuracy with its interval, best validation accuracy and the data, as far as recorded."""
    lines = ["", "## Metrics", ""]
    metrics = model.metrics or {}
    test, val = metrics.get("test"), metrics.get("best_validation")
    if test:
        lines.append(
            f"- test accuracy: {_fmt(test['accuracy'])} ± {_fmt(test.get('ci95', float('nan')))} "
            f"(95% interval, normal approximation) on {test.get('n', '?')} examples"
        )
    if val:
        lines.append(f"- best validation accuracy: {_fmt(val['accuracy'])} (epoch {metrics.get('best_epoch')})")
    if not (test or val):
        lines.append("- no evaluation recorded")
    if metrics.get("data"):
        lines.append(f"- data: `{metrics['data']}`")
    return lines


def _usage_section(model: QSetFitModel, repo_id: str | None) -> list[str]:
    """The training arguments and how to load the model."""
    args = model.training_args.to_dict() if model.training_args else None
    return [
        "",
        "## Training arguments",
        "",
        f"`{args}`" if args else "not trained with qsetfit's trainer",
        "",
        "## Usage",
        "",
        "```python",
        "from qsetfit import QSetFitModel",
        "",
        f"model = QSetFitModel.from_pretrained({(repo_id or 'path/to/this/folder')!r})",
        'print(model.predict(["a charming and often affecting journey"]))',
        "```",
        "",
        "Weights are safetensors and JSON (the circuit is QPY); loading unpickles nothing.",
        "",
    ]


def write_model_card(model: QSetFitModel, folder: str | Path, *, repo_id: str | None = None) -> Path:
    """Write (or refresh) ``folder/README.md``."""
    path = Path(folder) / MODEL_CARD
    persistence.atomic_write_bytes(path, model_card(model, repo_id=repo_id).encode())
    return path


def save_pretrained(model: QSetFitModel, directory: str | Path) -> Path:
    """``model.save(directory)`` plus the model card (and a tuned body copied into ``directory/body``)."""
    out = model.save(directory)
    write_model_card(model, out)
    return out


def from_pretrained(
    cls: type[M],
    path_or_repo_id: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> M:
    """Load a run directory, or download a Hub repository with ``snapshot_download`` and load that."""
    name = str(path_or_repo_id)
    if Path(name).expanduser().is_dir():
        return cls.load(Path(name).expanduser())
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise QSetFitError(f"{name!r} is neither a folder nor a Hub repository id like 'user/model'")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            repo_id=name,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            ignore_patterns=IGNORE_PATTERNS,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise QSetFitError(
            f"could not download {name!r} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{str(exc)[:200]}); check the id and your login, or pass a local folder"
        ) from exc
    return cls.load(folder)


def push_to_hub(
    model: QSetFitModel,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload qsetfit model",
    revision: str | None = None,
) -> str:
    """Upload the run directory (or a fresh ``save_pretrained`` of an unsaved model) in one commit.

    Returns:
        The URL of the commit.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory(prefix="qsetfit-push-") as tmp:
        if model.run_dir is not None and (Path(model.run_dir) / persistence.CONFIG).is_file():
            folder = Path(model.run_dir)
            write_model_card(model, folder, repo_id=repo_id)
        else:
            folder = save_pretrained(model, Path(tmp) / "model")
            write_model_card(model, folder, repo_id=repo_id)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            commit_message=commit_message,
            revision=revision,
            ignore_patterns=IGNORE_PATTERNS,
        )
    logger.info("pushed %s to %s", folder, info)
    return str(info)
