"""A screening study as data: the study file (TOML), its design matrix (pyDOE3) and the planned trials.

``qsetfit.bench.screening`` runs what this module plans.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from qsetfit.bench import baselines
from qsetfit.head.circuits import PRESETS, HeadConfig
from qsetfit.data.embeddings import DEFAULT_BODY
from qsetfit.errors import QSetFitError, check_keys, did_you_mean
from qsetfit.training.arguments import TrainingArguments

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

DESIGNS = ("full", "fractional", "lhs", "points")
HEAD_FIELDS = tuple(f.name for f in fields(HeadConfig) if f.name != "classes")
TRAINING_FIELDS = tuple(f.name for f in fields(TrainingArguments) if f.name != "seed")
KNOBS = HEAD_FIELDS + TRAINING_FIELDS


@dataclass
class Study:
    """A screening study: what to train on, which factors to vary, and how to lay out the design.

    Attributes:
        data: anything ``--data`` takes (the paper: an SST-2 split folder).
        body: sentence-transformers name or local folder.
        protocol: "paper" (pool, 256 per label, 85/15) or "given".
        seeds: every design point trains once per seed (each seed its own split).
        design: "full" (every combination), "fractional" (2-level, resolution ``resolution``), "lhs", or
            "points": the configurations listed in ``points`` (a confirmation stage for a screen's top points).
        samples: number of Latin-hypercube points (design "lhs").
        resolution: resolution of the fractional design (3: main effects clear of each other).
        design_seed: seeds the Latin hypercube.
        factors: field -> list of levels.
        fixed: field -> value held constant in every trial.
        preset: a head preset the trials start from (None: ``HeadConfig``'s defaults).
        per_label: examples per label drawn by the paper protocol.
        test_limit: score a seeded subsample of each test split (None: all of it).
        final_seeds: fresh seeds the winner is re-trained on beside the classical heads (0: no final stage).
        final_first_seed: the first of those seeds (kept away from ``seeds`` so they are fresh splits).
        hidden_grid: MLP widths of the final stage's classical heads (0 = logistic regression).
        points: with design "points", the configurations ({field: value}) to train; their fields become the
            factors of the main-effects table.
    """

    data: str
    body: str = DEFAULT_BODY
    protocol: str = "paper"
    seeds: list[int] = field(default_factory=lambda: [0])
    design: str = "full"
    samples: int = 0
    resolution: int = 3
    design_seed: int = 0
    factors: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    per_label: int = 256
    test_limit: int | None = None
    final_seeds: int = 5
    final_first_seed: int = 100
    hidden_grid: list[int] = field(default_factory=lambda: list(baselines.HIDDEN_GRID))
    points: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise QSetFitError(f"design must be one of {DESIGNS}, got {self.design!r}")
        if self.design == "points":
            if not self.points or self.factors:
                raise QSetFitError("design 'points' takes a non-empty points = [{...}, ...] list and no factors table")
            names = sorted({k for p in self.points for k in p})
            if any(set(p) != set(names) for p in self.points):
                raise QSetFitError(f"every point must set the same fields ({names}); put shared values in fixed")
            self.factors = {n: _distinct([p[n] for p in self.points]) for n in names}
        elif self.points:
            raise QSetFitError(f"points are only read by design 'points', not {self.design!r}")
        if not self.factors:
            raise QSetFitError("the study has no factors table; give at least one field with its levels")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise QSetFitError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}")
        for section, table in (("factors", self.factors), ("fixed", self.fixed)):
            for name in table:
                _check_knob(name, section)
        both = sorted(set(self.factors) & set(self.fixed))
        if both:
            raise QSetFitError(
                f"{both} appear in both the factors and the fixed fields; keep each field in one of them"
            )
        for name, levels in self.factors.items():
            if not isinstance(levels, list) or not levels or len(set(map(json.dumps, levels))) != len(levels):
                raise QSetFitError(f"factor {name!r} needs a list of distinct levels, got {levels!r}")
        if self.design == "fractional" and any(len(v) != 2 for v in self.factors.values()):
            odd = sorted(k for k, v in self.factors.items() if len(v) != 2)
            raise QSetFitError(f"a 2-level fractional design needs exactly 2 levels per factor; {odd} have not")
        if self.design == "lhs" and self.samples < 1:
            raise QSetFitError("design 'lhs' needs samples = N (the number of design points), N >= 1")
        if self.preset is not None and self.preset not in PRESETS:
            raise QSetFitError(f"unknown preset {self.preset!r}; available: {', '.join(sorted(PRESETS))}")
        if self.final_seeds < 0:
            raise QSetFitError(f"final_seeds must be >= 0, got {self.final_seeds}")
        if self.final_seeds and set(self.seeds) & set(
            range(self.final_first_seed, self.final_first_seed + self.final_seeds)
        ):
            raise QSetFitError("the final stage's seeds overlap the screening seeds; raise final_first_seed")

    @classmethod
    def from_toml(cls, path: str | Path) -> Study:
        """Read a study file, rejecting unknown keys with the nearest valid one."""
        path = Path(path)
        if not path.is_file():
            raise QSetFitError(f"study file {path} does not exist")
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise QSetFitError(f"{path} is not valid UTF-8 TOML: {exc}") from exc
        check_keys(values, [f.name for f in fields(cls)], f"study key {{!r}} in {path}")
        if "data" not in values:
            raise QSetFitError(f'{path} names no data; add data = "..." (anything --data takes)')
        for key in ("data", "body"):  # "~/..." and "$VAR/..." so one study file serves several machines
            if isinstance(values.get(key), str) and values[key].startswith(("~", "$")):
                values[key] = os.path.expanduser(os.path.expandvars(values[key]))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _distinct(values: list[Any]) -> list[Any]:
    """The distinct values in first-seen order (levels of a factor read from explicit points)."""
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _check_knob(name: str, section: str) -> None:
    if name == "seed":
        raise QSetFitError(
            f"'seed' cannot be in the study's {section}: list the seeds in the study's top-level seeds = [...]"
        )
    if name == "classes":
        raise QSetFitError(f"'classes' cannot be in the study's {section}: it comes from the data")
    if name not in KNOBS:
        near = did_you_mean(name, KNOBS)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise QSetFitError(
            f"unknown factor {name!r} in the study's {section}{hint} (any HeadConfig or TrainingArguments field works)"
        )


# ---- the design -----------------------------------------------------------------------------------------
def design_points(study: Study) -> list[dict[str, Any]]:
    """The design as a list of {factor: level}, from pyDOE3 (no hand-written design generator)."""
    import pyDOE3

    names = list(study.factors)
    counts = [len(study.factors[n]) for n in names]
    if study.design == "points":
        return [dict(p) for p in study.points]
    if study.design == "full":
        index = pyDOE3.fullfact(counts).astype(int)
    elif study.design == "fractional":
        try:
            signs = pyDOE3.fracfact_by_res(len(names), study.resolution)
        except ValueError:  # too few factors for a fraction: the full 2-level design is the smallest
            signs = pyDOE3.ff2n(len(names))
        index = (np.asarray(signs) > 0).astype(int)
    else:
        u = pyDOE3.lhs(len(names), samples=study.samples, seed=study.design_seed)
        index = np.minimum((u * np.asarray(counts)).astype(int), np.asarray(counts) - 1)
    return [{n: study.factors[n][int(i)] for n, i in zip(names, row, strict=True)} for row in index]


def trial_config(study: Study, point: dict[str, Any], classes: int) -> tuple[HeadConfig, TrainingArguments]:
    """The head and the training arguments of one design point (raises QSetFitError if impossible)."""
    values = {**study.fixed, **point}
    head = {k: v for k, v in values.items() if k in HEAD_FIELDS}
    training = {k: v for k, v in values.items() if k in TRAINING_FIELDS}
    if study.preset is not None:
        from qsetfit.workflow import head_config  # keeps qubits = encoders x encoder_qubits under overrides

        config = head_config(study.preset, classes, **head)
    else:
        config = HeadConfig(**head, classes=classes)
    return config, TrainingArguments(**training)


def trial_id(point: dict[str, Any], seed: int) -> str:
    """A stable name for (point, seed): its finished-trial file is trials/<id>.json."""
    text = json.dumps({"point": point, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plan_trials(study: Study, classes: int) -> list[dict[str, Any]]:
    """Every trial of the study, checked before any runs; impossible combinations carry the reason."""
    trials = []
    for index, point in enumerate(design_points(study)):
        plan: dict[str, Any]
        try:
            config, args = trial_config(study, point, classes)
            plan = {"head": config.to_dict(), "training": args.to_dict(), "status": "planned", "reason": ""}
        except (QSetFitError, TypeError, ValueError) as exc:
            plan = {"head": None, "training": None, "status": "skipped", "reason": str(exc)}
        for seed in study.seeds:
            trials.append({"id": trial_id(point, seed), "point_index": index, "point": point, "seed": seed} | plan)
    if all(t["status"] == "skipped" for t in trials):
        raise QSetFitError(f"every design point is impossible; first reason: {trials[0]['reason']}")
    return trials
