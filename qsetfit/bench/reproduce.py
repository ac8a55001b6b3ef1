"""``qsetfit reproduce``: the paper's protocol over seeds, with ablations, classical baselines and a verdict.

For each seed: draw the paper split (pool SST-2, 256 per label, 85/15 train/validation, test on the rest),
embed it once, then fit on exactly that split and those embeddings: the quantum presets, two ablations
of each (module 2 removed; module 1 replaced by a linear projection of the same width), all trained by the
same ``Trainer`` with the same arguments and selected on validation, and the classical heads of
``qsetfit.bench.baselines``. ``results.json`` holds every number; ``table.md`` puts mean ± std beside the paper's
reported numbers, and its verdict line follows the paired tests, whichever way they go.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from qsetfit.bench import baselines
from qsetfit.bench.splits import EmbeddedSplits, embedded_splits
from qsetfit.bench.reproduce_report import PAPER_REPORTED, compare_best, module2_shares, render_table, summary_rows
from qsetfit.head.circuits import HeadConfig
from qsetfit.data.embeddings import DEFAULT_BODY
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead, needs_input_dim
from qsetfit.io.persistence import atomic_write_bytes, read_resumable, write_json
from qsetfit.training.head_trainer import Trainer
from qsetfit.training.arguments import TrainingArguments

logger = logging.getLogger(__name__)

QUICK = {"seeds": 2, "epochs": 3, "test_limit": 500}


# ---- methods -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TorchMethod:
    """A head trained by the ``Trainer``: ``build(dim, seed) -> HybridHead``."""

    name: str
    kind: str  # "quantum" or "ablation"
    preset: str
    description: str
    build: Callable[[int, int], HybridHead]


def linear_module1(config: HeadConfig) -> HeadConfig:
    """The "module 1 replaced" ablation's config: a linear projection D -> Q of the raw embedding, same module 2."""
    return replace(config, module1="linear", amplitude_bias=0.0, reduction="none", pca_components=0)


def _builder(config: HeadConfig, *, module2: bool = True) -> Callable[[int, int], HybridHead]:
    def build(dim: int, seed: int) -> HybridHead:
        return HybridHead(config, seed=seed, input_dim=dim if needs_input_dim(config) else None, module2=module2)

    return build


def torch_methods(
    heads: Sequence[str] | Mapping[str, HeadConfig], classes: int, *, ablations: bool = True
) -> list[TorchMethod]:
    """The quantum heads (preset names, or name -> config) and, optionally, their two ablations each."""
    configs = heads if isinstance(heads, Mapping) else {p: HeadConfig.preset(p, classes=classes) for p in heads}
    methods = []
    for name, config in configs.items():
        config = replace(config, classes=classes)
        methods.append(
            TorchMethod(name, "quantum", name, "hybrid head (module 1 + module 2 + linear)", _builder(config))
        )
        if not ablations:
            continue
        if config.has_module1:
            methods.append(
                TorchMethod(
                    f"{name}/no-module2",
                    "ablation",
                    name,
                    "module 2 removed: linear layer on the module-1 features",
                    _builder(config, module2=False),
                )
            )
        if config.module1 != "linear":
            methods.append(
                TorchMethod(
                    f"{name}/linear-module1",
                    "ablation",
                    name,
                    "module 1 replaced by a linear projection of the same width",
                    _builder(linear_module1(config)),
                )
            )
    return methods


def num_parameters(module: nn.Module) -> int:
    """Trainable parameters of a torch head."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def predict(head: HybridHead, embeddings: np.ndarray, *, batch_size: int = 2048) -> np.ndarray:
    """(N,) predicted label ids."""
    return head.logits(torch.as_tensor(embeddings), batch_size=batch_size).argmax(dim=1).numpy()


def train_method(method: TorchMethod, split: EmbeddedSplits, args: TrainingArguments) -> dict[str, Any]:
    """Train one head on one seed's split; score it on the test split."""
    head = method.build(split.dim, split.seed)
    validation = None
    if split.validation is not None:
        validation = (torch.as_tensor(split.x_val, dtype=torch.float64), torch.as_tensor(split.y_val))
    t0 = time.perf_counter()
    trainer = Trainer(
        head,
        args,
        (torch.as_tensor(split.x_train, dtype=torch.float64), torch.as_tensor(split.y_train)),
        validation,
        progress=False,
    )
    result = trainer.train()
    seconds = time.perf_counter() - t0
    predictions = predict(head, split.x_test)
    return {
        "name": method.name,
        "kind": method.kind,
        "parameters": num_parameters(head),
        "accuracy": float((predictions == split.y_test).mean()),
        "seed": split.seed,
        "validation_accuracy": (result.best_validation or {}).get("accuracy"),
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 2),
        "correct": predictions == split.y_test,
    }


# ---- the run -------------------------------------------------------------------------------------------
def reproduce(
    data: str,
    out: str | Path,
    *,
    body: str = DEFAULT_BODY,
    seeds: int | None = None,
    presets: Sequence[str] = baselines.PAPER_PRESETS,
    epochs: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 0.02,
    ablations: bool = True,
    hidden_grid: Sequence[int] = baselines.HIDDEN_GRID,
    per_label: int = 256,
    protocol: str = "paper",
    test_limit: int | None = None,
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
    heads: Mapping[str, HeadConfig] | None = None,
    training: TrainingArguments | None = None,
    first_seed: int = 0,
    head_training: Mapping[str, TrainingArguments] | None = None,
) -> dict[str, Any]:
    """Run the protocol over seeds 0..S-1 and write ``results.json`` and ``table.md`` into ``out``.

    Args:
        data: the labelled source (SST-2 split folder for the paper; "demo" works too).
        out: output folder (created; existing results are overwritten unless ``resume``).
        body: the frozen sentence-transformer body.
        seeds: number of seeds S (default 5; ``quick``: 2).
        presets: quantum head presets.
        epochs, batch_size, learning_rate: training arguments of every torch head (epochs default 30; quick: 3).
        ablations: also train the two ablations of each preset.
        hidden_grid: MLP widths of the classical baselines (0 = logistic regression).
        per_label, protocol: the split (the paper: 256 per label, "paper").
        test_limit: score a seeded subsample of each test split (quick: 500).
        quick: a tiny run for checking the pipeline, not for conclusions.
        resume: keep the finished seeds of an earlier run in ``out`` with the same settings, run the rest.
        progress: show a progress bar.
        heads: quantum heads by name (overrides ``presets``; e.g. a screening study's winner).
        training: every training knob at once (overrides epochs / batch_size / learning_rate; seed = split seed).
        first_seed: seeds run from first_seed to first_seed + S - 1 (fresh seeds for a screen's final stage).
        head_training: per-head training knobs (a preset's own, e.g. ``TrainingArguments.preset``); a head and
            its ablations train with them instead of the common ones.

    Returns:
        The content of results.json, plus "table" (the markdown).
    """
    seeds, epochs, test_limit = _defaults(seeds, epochs, test_limit, quick)
    base_args = training or TrainingArguments(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    plan = SeedPlan(_heads(presets, heads), base_args, head_training or {}, ablations, tuple(hidden_grid))
    source = SplitSource(data, body, protocol, per_label, test_limit)
    seed_list = list(range(first_seed, first_seed + seeds))
    settings = source.settings(seed_list) | plan.settings() | {"quick": quick} | _environment()
    return _run_seeds(Path(out), settings, source, plan, seed_list, resume=resume, progress=progress)


@dataclass(frozen=True)
class SplitSource:
    """Where each seed's split comes from: the labelled source, the body that embeds it, the protocol."""

    data: str
    body: str
    protocol: str
    per_label: int
    test_limit: int | None

    def embedded(self, seed: int, progress: bool) -> EmbeddedSplits:
        return embedded_splits(
            self.data,
            body=self.body,
            seed=seed,
            protocol=self.protocol,
            per_label=self.per_label,
            test_limit=self.test_limit,
            progress=progress,
        )

    def settings(self, seeds: list[int]) -> dict[str, Any]:
        return {
            "data": self.data,
            "body": self.body,
            "seeds": seeds,
            "per_label": self.per_label,
            "protocol": self.protocol,
            "test_limit": self.test_limit,
        }


@dataclass(frozen=True)
class SeedPlan:
    """What every seed trains: the quantum heads (and their ablations) with their arguments, the classical grid."""

    heads: dict[str, HeadConfig]
    base_args: TrainingArguments
    head_training: Mapping[str, TrainingArguments]
    ablations: bool
    hidden_grid: tuple[int, ...]

    def settings(self) -> dict[str, Any]:
        return {
            "presets": list(self.heads),
            "heads": {name: c.to_dict() for name, c in self.heads.items()},
            "training": self.base_args.to_dict() | {"seed": "= split seed"},
            "head_training": {k: a.to_dict() for k, a in self.head_training.items()},
            "ablations": self.ablations,
            "hidden_grid": list(self.hidden_grid),
        }


def _run_seeds(
    out: Path,
    settings: dict[str, Any],
    source: SplitSource,
    plan: SeedPlan,
    seed_list: list[int],
    *,
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    """Each seed not finished yet in turn, the results rewritten after each (a resumed run keeps the others)."""
    out.mkdir(parents=True, exist_ok=True)
    seeds = len(seed_list)
    runs = _finished_runs(out, settings, seed_list) if resume else []
    done = {r["seed"] for r in runs}
    bar = tqdm(total=seeds, initial=len(done), desc="seeds", unit="seed", disable=not progress)
    result = _assemble(settings, runs, partial=len(done) < seeds) if done else {}
    if len(done) == seeds:  # a finished run resumed: re-write its table with the current code
        _write(out, result)
    for i, seed in enumerate(seed_list):
        if seed in done:
            continue
        split = source.embedded(seed, progress)
        settings["split"] = split.sizes() | {"dim": split.dim}
        runs += _one_seed(split, seed, plan, bar=bar)
        result = _assemble(settings, runs, partial=i + 1 < seeds)
        _write(out, result)
        bar.update()
    bar.close()
    return result


def _defaults(
    seeds: int | None, epochs: int | None, test_limit: int | None, quick: bool
) -> tuple[int, int, int | None]:
    """Seeds (5; quick 2), epochs (30; quick 3) and the test subsample (quick: 500) where not given."""
    seeds = seeds if seeds is not None else (QUICK["seeds"] if quick else 5)
    if seeds < 1:
        raise QSetFitError(f"seeds must be >= 1, got {seeds}")
    epochs = epochs if epochs is not None else (QUICK["epochs"] if quick else 30)
    return seeds, epochs, test_limit if test_limit is not None or not quick else QUICK["test_limit"]


def _heads(presets: Sequence[str], heads: Mapping[str, HeadConfig] | None) -> dict[str, HeadConfig]:
    if not presets and not heads:
        raise QSetFitError("presets is empty; pass at least one quantum preset (e.g. paper-10q-single)")
    return dict(heads) if heads else {p: HeadConfig.preset(p) for p in presets}


def _environment() -> dict[str, Any]:
    return {"torch_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__}


def _one_seed(split: EmbeddedSplits, seed: int, plan: SeedPlan, *, bar: Any) -> list[dict[str, Any]]:
    """Every torch head (and its ablations) and every classical baseline on one seed's split."""
    runs, classes = [], len(split.label_names)
    for method in torch_methods(plan.heads, classes, ablations=plan.ablations):
        bar.set_postfix_str(f"seed {seed}: {method.name}")
        args = plan.head_training.get(method.preset, plan.base_args)
        runs.append(train_method(method, split, replace(args, seed=seed)))
        logger.info("seed %d %s: %.4f", seed, method.name, runs[-1]["accuracy"])
    configs = {name: replace(c, classes=classes) for name, c in plan.heads.items()}
    specs = baselines.baseline_specs(split.dim, classes, configs=configs, hidden_grid=plan.hidden_grid)
    for r in baselines.fit_baselines(split, specs):
        runs.append(r.to_row() | {"kind": "classical", "model": r.kind, "correct": r.predictions == split.y_test})
    return runs


def _assemble(settings: dict[str, Any], runs: list[dict[str, Any]], *, partial: bool) -> dict[str, Any]:
    """Summary rows, the paired comparison and the table from the per-seed runs."""
    rows = summary_rows(runs)
    comparison = compare_best(runs, rows)
    # "correct" (per test sentence) is kept as a 0/1 string so a resumed run can redo the paired tests.
    result: dict[str, Any]
    result = {
        "settings": settings,
        "paper_reported": PAPER_REPORTED,
        "rows": rows,
        "comparison": comparison,
        "runs": [r | {"correct": _bits(r["correct"])} for r in runs],
        "partial": partial,
    }
    result["module2_share"] = module2_shares(rows)
    result["table"] = render_table(result)
    return result


# ---- the table -----------------------------------------------------------------------------------------


def _bits(correct: np.ndarray) -> str:
    return "".join("1" if c else "0" for c in np.asarray(correct, dtype=bool))


# Settings that may differ between a run and its resumption without changing any number.
_RESUME_FREE = ("seeds", "split", "torch_threads")


def _finished_runs(out: Path, settings: dict[str, Any], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The runs of the seeds an earlier ``reproduce`` into ``out`` finished, if its settings match; the split
    sizes those seeds recorded go into ``settings["split"]`` (read from the same file, once)."""

    def identity(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc["settings"].items() if k not in _RESUME_FREE}

    earlier = read_resumable(out / "results.json", identity, identity({"settings": settings}))
    if earlier is None:
        return []
    if any("correct" not in r for r in earlier["runs"]):
        raise QSetFitError(
            f"cannot resume from {out / 'results.json'}: it predates resumable results; pick another --out"
        )
    if earlier["runs"]:
        settings["split"] = earlier["settings"].get("split", {})
        logger.info("resuming: seeds %s already finished in %s", sorted({r["seed"] for r in earlier["runs"]}), out)
    return [r | {"correct": np.array([c == "1" for c in r["correct"]])} for r in earlier["runs"] if r["seed"] in seeds]


def _write(out: Path, result: dict[str, Any]) -> None:
    write_json(out / "results.json", result)
    atomic_write_bytes(out / "table.md", result["table"].encode())
