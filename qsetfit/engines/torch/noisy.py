"""The noisy torch engine: depolarizing gate noise, readout error and finite shots, batched, with autograd.

``make_engine(head_circuit, "torch-depolarizing")`` resolves a backend profile whose ``engine = "torch"``. It
reads the same ``noise_models/`` files as the Aer engines, with the same meaning:

- gate noise: ``depolarizing_error(p1, 1)`` after every one-qubit gate named in ``gates_1q`` and
  ``depolarizing_error(p2, 2)`` after every two-qubit gate in ``gates_2q`` (``noise.build_noise_model``);
  noise follows the circuit's gate names, as Aer's does on the gates it simulates natively (Aer's density-matrix
  method decomposes the gates it lacks, such as crx, and its cx noise then hits the pieces; qsetfit heads are
  ry/cx, where the two agree to 1e-10); kind "device": each ISA gate of the circuit transpiled for the fake
  backend gets the depolarizing channel with that gate's error rate in the backend target (``device_rates``),
  readout flips as in Aer's model;
- readout: independent flips per qubit, applied exactly as the affine (confusion-matrix) map on the
  measured distribution, so <Z> -> (p10 - p01) + (1 - p01 - p10) <Z> (``noise.py``);
- shots: > 0 samples that many outcomes per input from the (read-out) distribution; the value carries the
  exact gradient of its mean (straight-through), so sampled forwards still train.

Methods: "density_matrix" (exact, up to ``density_matrix_max_qubits``), "trajectories" above (or with
method = "statevector"): ``trajectories`` Pauli-error trajectories per input with the error-free branch split
off (``trajectories.py``), unbiased, run on fused gate blocks (``fused_trajectories.py``); "statevector" when
the profile has no gate noise. Trajectories compute in float32 by default (their standard error, ~1e-3,
dwarfs float32's rounding, ~1e-7; ``dtype=torch.float64`` keeps double precision), the exact methods in
float64; values come back in the inputs' dtype. Every forward leaves a ``NoisyResult`` in
``engine.last_result``: values, standard errors, method, trajectories and shots.
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any, NamedTuple

import numpy as np
import torch

from qsetfit import profiles
from qsetfit.head.circuits import HeadCircuit
from qsetfit.engines.base import Capabilities, Engine, EngineInfo
from qsetfit.engines.torch.density import (
    GateProgram,
    apply_matrix,
    diagonal_observables,
    evolve_density,
)
from qsetfit.engines.torch.fused_trajectories import (
    evolve_clean,
    evolve_fused,
    fused_plan,
    table_support,
)
from qsetfit.engines.torch.gates import expand_custom_gates
from qsetfit.engines.torch.trajectories import sample_errors

logger = logging.getLogger(__name__)


class NoisyResult(NamedTuple):
    """What one noisy forward computed.

    Attributes:
        values: (B, n_obs) estimates of the noisy (and read-out) expectation values.
        stderr: (B, n_obs) their standard errors (0 when exact; NaN with a single trajectory and no shots).
        method: "statevector", "density_matrix" or "trajectories".
        trajectories: trajectories per input (0 when exact).
        shots: measured shots per input (0: exact expectation values).
    """

    values: torch.Tensor
    stderr: torch.Tensor
    method: str
    trajectories: int
    shots: int


def depolarizing_rates(circuit: Any, noise: profiles.NoiseProfile) -> list[float]:
    """The depolarizing parameter after each (non-barrier) gate, as Aer's model of a depolarizing profile."""
    rates = []
    for inst in circuit.data:
        op = inst.operation
        if op.name == "barrier":
            continue
        if op.num_qubits == 1 and op.name in noise.gates_1q:
            rates.append(noise.p1)
        elif op.num_qubits == 2 and op.name in noise.gates_2q:
            rates.append(noise.p2)
        else:
            rates.append(0.0)
    return rates


def device_rates(circuit: Any, physical: list[int], backend_name: str) -> list[float]:
    """Per ISA gate: the depolarizing parameter whose average gate infidelity is the target's error rate.

    A depolarizing channel with parameter lam on d = 2^k levels has average infidelity lam (d - 1)/d, so
    lam = error d/(d - 1), capped at the fully depolarizing d^2/(d^2 - 1). Thermal relaxation, which
    ``NoiseModel.from_backend`` adds on top (and subtracts from the depolarizing part), is not modelled.
    """
    from qsetfit.engines.ibm.cost import target_property
    from qsetfit.engines.aer.noise import fake_backend

    target = fake_backend(backend_name).target
    rates = []
    for inst in circuit.data:
        if inst.operation.name == "barrier":
            continue
        qargs = tuple(physical[circuit.find_bit(q).index] for q in inst.qubits)
        d = 2 ** len(qargs)
        error = target_property(target, inst.operation.name, qargs, "error")
        rates.append(min(error * d / (d - 1), d * d / (d * d - 1)))
    return rates


def _method(profile: profiles.BackendProfile, rates: list[float] | None, n: int) -> tuple[str, int]:
    """(method, trajectories per input) a profile runs with on ``n`` qubits with these gate noise rates."""
    if rates is None or not any(r > 0 for r in rates):
        return "statevector", 0
    if profile.method == "density_matrix" and n <= profile.density_matrix_max_qubits:
        return "density_matrix", 0
    return "trajectories", profile.trajectories


class TorchNoiseEngine(Engine):
    """Module 2 under depolarizing (or device-derived) noise on torch, configured by a backend profile.

    Args:
        head_circuit: the circuit, its input/weight order and Z-type observables.
        profile: a backend profile with ``engine = "torch"``.
        dtype: torch.float64 or torch.float32; default float32 for trajectories (their standard error,
            ~1e-3, dwarfs float32's rounding; ~1.5x faster at 14 qubits), float64 for the exact methods. The
            values come back in the inputs' dtype.

    Attributes:
        method, trajectories, shots: what a forward pass runs (see the module docstring).
        physical_qubits: device qubits of the compact ISA circuit (kind "device"), else None.
        isa_circuit: kind "device": (compact ISA circuit, its observables, physical qubits) the engine runs.
        last_result: the ``NoisyResult`` of the latest forward pass (None before the first).
    """

    capabilities = Capabilities(initial_state=False, gradients=True, noise=True)
    confusion: torch.Tensor
    diag: torch.Tensor
    read_diag: torch.Tensor

    def __init__(
        self, head_circuit: HeadCircuit, profile: profiles.BackendProfile, *, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__(
            num_inputs=len(head_circuit.inputs),
            num_weights=len(head_circuit.weights),
            num_outputs=len(head_circuit.observables),
        )
        from qsetfit.engines.aer import noise

        self.profile = profile
        self.noise = noise_profile = profiles.load_noise_profile(profile.noise_model)
        circuit, observables, physical = expand_custom_gates(head_circuit.circuit), list(head_circuit.observables), None
        if noise_profile.kind == "device":
            circuit, observables, physical = noise.device_isa_circuit(
                circuit,
                observables,
                noise_profile.backend,
                optimization_level=profile.optimization_level,
                seed_transpiler=profile.seed_transpiler,
            )
            rates: list[float] | None = device_rates(circuit, physical, noise_profile.backend)
            self.isa_circuit = (circuit, observables, physical)
        else:
            rates = depolarizing_rates(circuit, noise_profile) if noise_profile.kind == "depolarizing" else None
        self.physical_qubits = physical
        n = self.num_qubits = circuit.num_qubits
        self.method, self.trajectories = _method(profile, rates, n)
        if dtype is None:  # trajectories: a statistical error ~1e-3 dwarfs float32's rounding (~1e-7)
            dtype = torch.float32 if self.method == "trajectories" else torch.float64
        self.program = GateProgram(circuit, head_circuit.inputs, head_circuit.weights, rates, dtype=dtype)
        flips = noise.readout_flips(noise.build_noise_model(noise_profile, physical), n)  # (n, 2): p01, p10
        real = self.program.a_w.dtype
        confusion = np.stack([[[1 - a, b], [a, 1 - b]] for a, b in flips])  # (n, 2, 2): [read, prepared]
        self.readout_qubits = [q for q in range(n) if flips[q].any()]
        self.register_buffer("confusion", torch.tensor(confusion, dtype=real), persistent=False)
        self.register_buffer("diag", torch.tensor(diagonal_observables(observables, n), dtype=real), persistent=False)
        self.plan = fused_plan(
            circuit,
            head_circuit.inputs,
            head_circuit.weights,
            len(self.program.gates),
            support=table_support(self.diag, n),
        )  # the observables' light cone only
        # Read-out folded into the observables (probs' @ diag = probs @ C^T diag), in the fused final axis order:
        # the trajectories' big (B T, 2^n) tensor is then multiplied once, never transformed.
        read_diag = self.read_out(self.diag.T).T
        self.register_buffer("read_diag", self.plan.final_order(read_diag), persistent=False)
        self._configure_sampling(profile)
        self.last_result: NoisyResult | None = None
        logger.info(
            "torch noise engine %r: %d qubits, method %s%s, %s, noise %r",
            profile.name,
            n,
            self.method,
            f" ({self.trajectories} per input)" if self.trajectories else "",
            f"{self.shots} shots" if self.shots else "exact expectation values",
            noise_profile.name,
        )

    def _configure_sampling(self, profile: profiles.BackendProfile) -> None:
        """Shots per forward pass and the seeded generator (the method is chosen by ``_method``)."""
        self.shots = int(profile.shots or 0)
        seed = profile.seed if profile.seed is not None else secrets.randbits(63)
        self.generator = torch.Generator().manual_seed(seed)

    # ---- pieces ------------------------------------------------------------------------------------
    def read_out(self, probs: torch.Tensor) -> torch.Tensor:
        """(..., 2^n) probabilities -> the distribution of the read bits (exact readout-flip map).

        Applied to the rows of ``diag.T`` it gives C^T diag, the observables as the read-out sees them.
        """
        shape = probs.shape
        flat = probs.reshape(-1, shape[-1])
        for q in self.readout_qubits:
            flat = apply_matrix(flat, self.confusion[q][None], (q,), self.num_qubits)
        return flat.reshape(shape)

    def _sample_shots(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2^n) read-out distribution -> (B, n_obs) shot means and their standard errors."""
        device = probs.device
        gen = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))
        idx = torch.multinomial(probs.detach().clamp_min(0), self.shots, replacement=True, generator=gen)  # (B, S)
        values = self.diag[idx]  # (B, S, n_obs)
        std = values.std(dim=1, unbiased=True) if self.shots > 1 else torch.full_like(values[:, 0], math.nan)
        return values.mean(dim=1), std / math.sqrt(self.shots)

    def run(self, x: torch.Tensor, w: torch.Tensor) -> NoisyResult:
        """The noisy estimate, its standard error and how it was computed, for (B, n_in) x and (n_w,) w."""
        batch = x.shape[0]
        mats = [m.to(x.device) for m in self.program.matrices(x, w)]
        probs: torch.Tensor | None
        if self.method == "density_matrix":
            probs = self.read_out(evolve_density(self.program, mats, batch))  # (B, 2^n)
            exact, stderr = probs @ self.diag, self._no_error(batch, x.device)
        elif self.method == "trajectories":
            exact, stderr, probs = self._trajectories(mats, batch)
        else:
            probs = self.read_out(evolve_clean(self.program, self.plan, mats, batch))
            exact, stderr = probs @ self.diag, self._no_error(batch, x.device)
        values = exact
        if self.shots:
            assert probs is not None  # trajectories return their mixture whenever shots are drawn
            sampled, shot_err = self._sample_shots(probs)
            values = exact + (sampled - exact).detach()  # sampled value, gradient of its mean
            stderr = torch.sqrt(stderr.nan_to_num(0.0) ** 2 + shot_err**2)
        values, stderr = values.to(x.dtype), stderr.to(x.dtype)  # float32 trajectories, float64 callers
        self.last_result = NoisyResult(values, stderr.detach(), self.method, self.trajectories, self.shots)
        return self.last_result

    def _trajectories(
        self, mats: list[torch.Tensor], batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(B, n_obs) estimate, its standard error, and the (B, 2^n) mixed read-out distribution."""
        per = self.trajectories
        sample = sample_errors(self.program, batch * per, self.generator)
        p0 = sample.p0
        clean, traj, noisy = evolve_fused(
            self.program, self.plan, mats, batch, per, sample, self.read_diag, mixture=bool(self.shots)
        )  # read-out expectation values
        estimate = p0 * clean + (1 - p0) * traj.mean(dim=1)
        spread = traj.detach().std(dim=1, unbiased=True) if per > 1 else torch.full_like(estimate, math.nan)
        mixture = None if noisy is None else self.read_out(noisy)  # the read-out distribution the shots sample
        return estimate, (1 - p0) * spread / math.sqrt(per), mixture

    # ---- Engine ------------------------------------------------------------------------------------
    def _no_error(self, batch: int, device: torch.device) -> torch.Tensor:
        """(B, O) zero standard errors: exact methods."""
        return torch.zeros(batch, self.num_outputs, dtype=self.diag.dtype, device=device)

    def _forward(self, x: torch.Tensor, w: torch.Tensor, *_: torch.Tensor | None) -> torch.Tensor:
        return self.run(x, w).values

    def describe(self) -> EngineInfo:
        """The noisy torch engine's method (statevector, density matrix or trajectories), shots, layout and
        precision (float32: the trajectories' default)."""
        physical = tuple(self.physical_qubits) if self.physical_qubits else None
        precision = "float32" if self.program.a_w.dtype == torch.float32 else ""
        return EngineInfo("torch-noise", self.method, self.trajectories, self.shots or 0, physical, precision)

    def extra_repr(self) -> str:
        return (
            f"profile={self.profile.name!r}, method={self.method!r}, trajectories={self.trajectories}, "
            f"shots={self.shots}, noise={self.noise.name!r}"
        )


def engine_from_profile(
    head_circuit: HeadCircuit, profile: profiles.BackendProfile, **options: Any
) -> TorchNoiseEngine:
    """Builder for ``engine = "torch"`` profiles: ``dtype`` goes to the engine, other options override fields."""
    dtype = options.pop("dtype", None)
    if options:
        profile = profile.replace(**options)
    return TorchNoiseEngine(head_circuit, profile, dtype=dtype)


def training_engine(engine: str, noise: str, trajectories: int, seed: int) -> tuple[str, dict[str, Any]]:
    """(engine name, options) module 2 trains on: ``engine`` itself, or Pauli-error trajectories under ``noise``.

    With a noise profile, every forward pass draws ``trajectories`` fresh trajectories per input (a stochastic,
    unbiased forward pass; autograd runs through each trajectory) on the noisy torch engine, seeded by ``seed``.
    """
    if not noise:
        return engine, {}
    profiles.load_noise_profile(noise)  # an unknown name fails here, with the look-up's "did you mean"
    dtype = torch.float32 if engine == "torch-float32" else torch.float64
    return "torch-trajectories", {
        "noise_model": noise,
        "method": "statevector",
        "shots": 0,
        "trajectories": trajectories,
        "seed": seed,
        "dtype": dtype,
    }
