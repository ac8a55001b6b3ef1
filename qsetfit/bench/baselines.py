"""Classical heads on the same frozen embeddings, splits and seeds as the quantum head, each with its size.

Heads: logistic regression, an RBF SVC, and one-hidden-layer MLPs (the grid 0/48/96/144/192 hidden units,
where 0 *is* logistic regression, plus one MLP sized to each quantum head's parameter count). Their
regularisation strength is chosen on the validation split, as the quantum head's epoch is; every head
is then scored on the test split.

What "parameters" counts (``parameter_count``), always read off the fitted sklearn object:

- logistic regression: ``coef_.size + intercept_.size``. sklearn fits ONE weight row for two classes
  (``coef_`` is (1, D)), so binary is D + 1; K > 2 classes (multinomial) is K * D + K.
- MLP: the sizes of every ``coefs_`` and ``intercepts_`` array. The binary output layer is one logistic
  unit, so binary is D*h + h + h + 1; K > 2 is D*h + h + h*K + K.
- RBF SVC: the numbers it must store to predict: ``support_vectors_`` (n_SV x D), ``dual_coef_``
  ((K-1) x n_SV) and ``intercept_`` (K(K-1)/2). It grows with the training set (n_SV varies by seed);
  gamma and C are hyper-parameters, not counted.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from qsetfit.head.circuits import HeadConfig
from qsetfit.data.embeddings import DEFAULT_BODY
from qsetfit.errors import QSetFitError
from qsetfit.bench.stats import summary_rows

# The split helpers lived here; code that imports them from ``baselines`` keeps working.
from qsetfit.bench.splits import EmbeddedSplits as EmbeddedSplits
from qsetfit.bench.splits import embedded_splits as embedded_splits
from qsetfit.bench.splits import load_seed_splits as load_seed_splits
from qsetfit.bench.splits import subsample as subsample

logger = logging.getLogger(__name__)

HIDDEN_GRID = (0, 48, 96, 144, 192)
PAPER_PRESETS = ("paper-10q-single", "paper-14q-multi")
KINDS = ("logreg", "svc", "mlp")


# ---- parameter counts -------------------------------------------------------------------------------
def parameter_count(estimator: Any) -> int:
    """Trainable numbers of a fitted LogisticRegression, MLPClassifier or SVC (module docstring)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if isinstance(estimator, LogisticRegression):
        return int(estimator.coef_.size + estimator.intercept_.size)
    if isinstance(estimator, MLPClassifier):
        return int(sum(c.size for c in estimator.coefs_) + sum(b.size for b in estimator.intercepts_))
    if isinstance(estimator, SVC):
        return int(estimator.support_vectors_.size + estimator.dual_coef_.size + estimator.intercept_.size)
    raise QSetFitError(
        f"parameter_count knows LogisticRegression, MLPClassifier and SVC, got {type(estimator).__name__}"
    )


def mlp_parameters(dim: int, hidden: int, classes: int) -> int:
    """Parameters of sklearn's one-hidden-layer MLP on ``dim`` inputs (hidden = 0: logistic regression)."""
    out = 1 if classes == 2 else classes  # sklearn: one logistic output unit for two classes
    if hidden == 0:
        return (dim + 1) * out
    return dim * hidden + hidden + hidden * out + out


def matched_hidden_units(budget: int, dim: int, classes: int) -> int:
    """The hidden width >= 1 whose MLP parameter count is nearest ``budget`` (ties: the smaller)."""
    if budget < 1 or dim < 1:
        raise QSetFitError(f"matched_hidden_units needs a positive budget and dim, got {budget}, {dim}")
    per_unit = mlp_parameters(dim, 2, classes) - mlp_parameters(dim, 1, classes)
    guess = max(1, round((budget - mlp_parameters(dim, 1, classes)) / per_unit) + 1)
    candidates = [h for h in (guess - 1, guess, guess + 1) if h >= 1]
    return min(candidates, key=lambda h: (abs(mlp_parameters(dim, h, classes) - budget), h))


# ---- which heads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineSpec:
    """One classical head: ``kind`` in ("logreg", "svc", "mlp"); ``hidden`` units for an MLP."""

    name: str
    kind: str
    hidden: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise QSetFitError(f"baseline kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "mlp" and self.hidden < 1:
            raise QSetFitError("an MLP needs hidden >= 1 (hidden 0 is logistic regression: kind='logreg')")


def baseline_specs(
    dim: int,
    classes: int,
    *,
    configs: Mapping[str, HeadConfig] | None = None,
    hidden_grid: Sequence[int] = HIDDEN_GRID,
    svc: bool = True,
) -> list[BaselineSpec]:
    """Logistic regression (= the grid's 0), the RBF SVC, the MLP grid, one MLP per quantum head size.

    Args:
        dim: embedding dimension D.
        classes: K.
        configs: quantum heads to match in size, by name (default: the paper presets with K classes).
        hidden_grid: MLP widths; 0 stands for logistic regression.
        svc: include the RBF SVC.
    """
    if configs is None:
        configs = {name: HeadConfig.preset(name, classes=classes) for name in PAPER_PRESETS}
    if any(h < 0 for h in hidden_grid):
        raise QSetFitError(f"hidden_grid widths must be >= 0, got {list(hidden_grid)}")
    specs = [BaselineSpec("logreg", "logreg", 0, "MLP with 0 hidden units")]
    if svc:
        specs.append(BaselineSpec("svc-rbf", "svc"))
    specs += [BaselineSpec(f"mlp-{h}", "mlp", h) for h in sorted(set(hidden_grid)) if h > 0]
    for preset, config in configs.items():
        budget = config.parameter_counts(dim)["total"]
        h = matched_hidden_units(budget, dim, classes)
        note = f"sized to {preset} ({budget} parameters)"
        specs.append(BaselineSpec(f"mlp-{h}-matched-{preset}", "mlp", h, note))
    return specs


# ---- fitting ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineOptions:
    """How the classical heads are fit. Each grid is searched on validation; ties go to the earlier value.

    Attributes:
        c_grid: inverse L2 strength C of logistic regression and the SVC (sklearn's default first).
        alpha_grid: L2 penalty of the MLPs (sklearn's default first).
        mlp_restarts: initialisations per MLP alpha (seeds ``seed + 7919 r``); a narrow ReLU MLP started
            with dead units stays a constant classifier, so validation also picks among restarts.
        max_iter: iteration cap of the lbfgs solvers (logistic regression and MLP).
        threads: BLAS threads while fitting (1 by default: on a shared 2-core machine more threads made the
            MLP fits 10-100x slower); None leaves the BLAS setting alone.
    """

    c_grid: tuple[float, ...] = (1.0, 0.1, 10.0)
    alpha_grid: tuple[float, ...] = (1e-4, 1e-2, 1.0, 10.0)
    mlp_restarts: int = 3
    max_iter: int = 1000
    threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.c_grid or not self.alpha_grid or min(self.c_grid) <= 0 or min(self.alpha_grid) < 0:
            raise QSetFitError("c_grid must hold values > 0 and alpha_grid values >= 0 (both non-empty)")
        if self.mlp_restarts < 1 or self.max_iter < 1:
            raise QSetFitError(f"mlp_restarts and max_iter must be >= 1, got {self.mlp_restarts}, {self.max_iter}")


@dataclass
class BaselineResult:
    """One classical head fit on one seed's split."""

    name: str
    kind: str
    hidden: int
    parameters: int
    accuracy: float
    validation_accuracy: float | None
    hyperparameters: dict[str, float]
    seed: int
    seconds: float
    predictions: np.ndarray = field(repr=False)

    def to_row(self) -> dict[str, Any]:
        """JSON row (predictions left out)."""
        return {
            k: getattr(self, k)
            for k in (
                "name",
                "kind",
                "hidden",
                "parameters",
                "accuracy",
                "validation_accuracy",
                "hyperparameters",
                "seed",
                "seconds",
            )
        }


def _candidates(spec: BaselineSpec, seed: int, options: BaselineOptions) -> list[tuple[Any, dict[str, float]]]:
    """Every (unfitted estimator, hyper-parameters) the validation split chooses among, in preference order."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if spec.kind == "logreg":
        return [(LogisticRegression(C=c, max_iter=options.max_iter), {"C": c}) for c in options.c_grid]
    if spec.kind == "svc":
        return [(SVC(C=c, kernel="rbf", gamma="scale"), {"C": c}) for c in options.c_grid]
    return [
        (
            MLPClassifier(
                hidden_layer_sizes=(spec.hidden,),
                alpha=a,
                solver="lbfgs",
                max_iter=options.max_iter,
                random_state=seed + 7919 * r,
            ),
            {"alpha": a, "restart": r},
        )
        for a in options.alpha_grid
        for r in range(options.mlp_restarts)
    ]


Labelled = tuple[np.ndarray, np.ndarray]  # (embeddings (N, D), label ids (N,))


def fit_baseline(
    spec: BaselineSpec,
    train: Labelled,
    validation: Labelled | None,
    test: Labelled,
    *,
    seed: int = 0,
    options: BaselineOptions | None = None,
) -> BaselineResult:
    """Fit one head on ``train`` (hyper-parameters chosen on ``validation``; without it, the first candidate).

    Args:
        spec: which head.
        train, validation, test: (embeddings (N, D) float, label ids (N,) int).
        seed: the MLP's initial weights (the other heads are deterministic).
        options: grids, restarts, iteration caps, threads.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    options = options or BaselineOptions()
    candidates = _candidates(spec, seed, options)
    if validation is None:
        candidates = candidates[:1]
    best: tuple[float, Any, dict[str, float]] | None = None
    t0 = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=options.threads):
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs at max_iter still gives a usable head
        for model, hyper in candidates:
            model.fit(*train)
            score = float((model.predict(validation[0]) == validation[1]).mean()) if validation is not None else -1.0
            if best is None or score > best[0]:
                best = (score, model, hyper)
        assert best is not None
        score, model, hyper = best
        predictions = model.predict(test[0])
    return BaselineResult(
        spec.name,
        spec.kind,
        spec.hidden,
        parameter_count(model),
        float((predictions == test[1]).mean()),
        score if validation is not None else None,
        hyper,
        seed,
        round(time.perf_counter() - t0, 2),
        np.asarray(predictions),
    )


def fit_baselines(
    split: EmbeddedSplits, specs: Sequence[BaselineSpec], *, options: BaselineOptions | None = None
) -> list[BaselineResult]:
    """Every head in ``specs`` on one seed's split."""
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    return [fit_baseline(s, train, split.validation, test, seed=split.seed, options=options) for s in specs]


def summarize(results: Sequence[BaselineResult]) -> list[dict[str, Any]]:
    """One row per head over seeds (``stats.summary_rows``), with its kind and hidden width."""
    return summary_rows([r.to_row() for r in results], keep=("kind", "hidden"))


def run_baselines(
    data: str,
    *,
    body: str = DEFAULT_BODY,
    seeds: Sequence[int] = (0,),
    protocol: str = "paper",
    per_label: int = 256,
    presets: Sequence[str] = PAPER_PRESETS,
    hidden_grid: Sequence[int] = HIDDEN_GRID,
    test_limit: int | None = None,
    options: BaselineOptions | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``qsetfit baselines``: every classical head over ``seeds``, on the quantum head's splits and embeddings.

    Returns:
        {"rows": summary rows (see ``summarize``), "runs": per-seed rows, "settings": what was run}.
    """
    if not seeds:
        raise QSetFitError("seeds is empty; pass at least one seed")
    results: list[BaselineResult] = []
    sizes: dict[str, int] = {}
    for seed in seeds:
        split = embedded_splits(
            data, body=body, seed=seed, protocol=protocol, per_label=per_label, test_limit=test_limit, progress=progress
        )
        configs = {p: HeadConfig.preset(p, classes=len(split.label_names)) for p in presets}
        specs = baseline_specs(split.dim, len(split.label_names), configs=configs, hidden_grid=hidden_grid)
        results += fit_baselines(split, specs, options=options)
        sizes = split.sizes() | {"dim": split.dim}
        logger.info("baselines, seed %d: %s", seed, {r.name: round(r.accuracy, 4) for r in results[-len(specs) :]})
    settings = {
        "data": data,
        "body": body,
        "seeds": list(seeds),
        "protocol": protocol,
        "per_label": per_label,
        "test_limit": test_limit,
        "split": sizes,
        "options": asdict(options or BaselineOptions()),
    }
    return {"rows": summarize(results), "runs": [r.to_row() for r in results], "settings": settings}
