"""The torch engine: a ``QuantumCircuit`` compiled once into batched, fused statevector operations.

Why hand-written: no maintained library simulates a Qiskit circuit batched over inputs with torch
autograd at this speed (PennyLane's default.qubit applies gate by gate; Aer has no autograd).

How it is fast (measured in benchmarks/bench_engines.py):
- gate fusion: consecutive gates are merged into blocks of up to ``fusion_qubits`` qubits; each block is
  one (2^k x 2^k) matrix built from the gate angles (cheap, differentiable) and applied to the state as a
  single matmul, so the big state is read and written once per block instead of once per gate;
- lazy qubit order: the state keeps whatever axis order the last block left, so a block whose qubits are
  already the trailing axes costs no transpose; the read-out folds the final order into the observables;
- a real float path when every gate is real (RY/CX/CZ/H/X/Z...): half the memory, a quarter of the flops;
- memory-bounded batch chunks, recomputed in the backward pass (activation checkpointing) when the
  stored activations of the whole batch would exceed ``max_memory_bytes``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from torch.utils.checkpoint import checkpoint

from qsetfit.engines.base import Capabilities, Engine
from qsetfit.engines.torch.compile import ParsedGate, fuse, parse_circuit, ring_span
from qsetfit.engines.torch.evolve import AdjointEvolve, Plan, evolve, permute, probabilities, zero_state
from qsetfit.engines.torch.gates import (
    REAL_GATES,
    angle_matrix,
    fixed_matrix,
)
from qsetfit.errors import QSetFitError, did_you_mean


class TorchStatevectorEngine(Engine):
    """Exact expectation values of a parameterised circuit for a batch of inputs, with autograd.

    Args:
        circuit: the circuit; gates from ``gates.SUPPORTED_GATES``, angles affine in the parameters.
        inputs: input parameters, in the column order of ``x``.
        weights: weight parameters, in the order of ``w``.
        observables: ``SparsePauliOp``s read from one state evolution.
        dtype: torch.float64 (default) or torch.float32; complex circuits use the matching complex type.
        fusion_qubits: widest fused block (2^k x 2^k matrices); None picks the width measured fastest on CPU
            (3 up to 9 qubits, where per-sample block matrices would outgrow the state; 4 up to 11; then 5).
        gradient: "adjoint" (default: no stored states, cache-sized chunks) or "autograd" (stored states;
            always used when an observable has X/Y factors).
        real_path: None (default) uses real arithmetic when every gate and observable allows it; False forces
            complex arithmetic (for comparisons).
        cache_bytes: target bytes of one state chunk on CPU in the adjoint path (1 MiB measured fastest).
        max_memory_bytes: bound on stored states in the autograd path; larger batches run in checkpointed chunks.
    """

    capabilities = Capabilities(initial_state=True, gradients=True, noise=False)
    a_x: torch.Tensor  # buffers (register_buffer), declared for the type checker
    a_w: torch.Tensor
    const: torch.Tensor
    diag: torch.Tensor

    def __init__(
        self,
        circuit: QuantumCircuit,
        inputs: list[Parameter],
        weights: list[Parameter],
        observables: list[SparsePauliOp],
        *,
        dtype: torch.dtype = torch.float64,
        fusion_qubits: int | None = None,
        gradient: str = "adjoint",
        real_path: bool | None = None,
        cache_bytes: int = 1 << 20,
        max_memory_bytes: int = 2 * 1024**3,
    ) -> None:
        super().__init__(num_inputs=len(inputs), num_weights=len(weights), num_outputs=len(observables))
        if dtype not in (torch.float64, torch.float32):
            raise QSetFitError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        n = circuit.num_qubits
        if n == 0:
            raise QSetFitError("the circuit has no qubits; build it with at least one qubit")
        self.num_qubits = n
        if gradient not in ("adjoint", "autograd"):
            raise QSetFitError(f"gradient must be 'adjoint' or 'autograd', got {gradient!r}")
        self.gradient = gradient
        self.cache_bytes = cache_bytes
        self.max_memory_bytes = max_memory_bytes
        index = {p: ("x", i) for i, p in enumerate(inputs)} | {p: ("w", i) for i, p in enumerate(weights)}
        gates, rows = self._parse(circuit, index)
        if not gates:  # a circuit without gates is the identity: one identity gate keeps the pipeline uniform
            gates = [ParsedGate("id", (0,), [], False)]
        self.real = all(g.name in REAL_GATES for g in gates) and all(_is_real(o) for o in observables)
        if real_path is not None:
            if real_path and not self.real:
                raise QSetFitError(
                    "real_path=True needs only real gates (ry, cx, cz, h, x, z, swap...) and real observables"
                )
            self.real = real_path
        self.gates = gates
        # Angle tables: angles = const + A_w @ w (+ x @ A_x^T for input-dependent slots).
        a_x = np.zeros((len(rows), len(inputs)))
        a_w = np.zeros((len(rows), len(weights)))
        const = np.zeros(len(rows))
        for r, (terms, c) in enumerate(rows):
            const[r] = c
            for (kind, col), coeff in terms.items():
                (a_x if kind == "x" else a_w)[r, col] += coeff
        real_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        self.register_buffer("a_x", torch.tensor(a_x, dtype=real_dtype), persistent=False)
        self.register_buffer("a_w", torch.tensor(a_w, dtype=real_dtype), persistent=False)
        self.register_buffer("const", torch.tensor(const, dtype=real_dtype), persistent=False)
        for name in sorted({g.name for g in gates if not g.slots}):
            self.register_buffer(f"fixed_{name}", fixed_matrix(name, self.dtype), persistent=False)
        if fusion_qubits is None:
            fusion_qubits = 3 if n <= 9 else 4 if n <= 11 else 5
        self.blocks = fuse(gates, n, max(1, min(fusion_qubits, n)))
        self._schedule()
        self.plan = Plan(n, tuple(self.steps))
        self._group_blocks()
        self._compile_readout(observables)

    @property
    def dtype(self) -> torch.dtype:
        """The state's dtype. It follows the angle tables, so ``.double()`` / ``.float()`` convert the engine."""
        real = self.a_w.dtype
        if real not in (torch.float64, torch.float32):
            raise QSetFitError(
                f"the torch engine computes in float64 or float32, not {real}; call .double() or .float() on the "
                "layer, or choose the engine 'torch' (float64) or 'torch-float32'"
            )
        return real if self.real else (torch.complex128 if real == torch.float64 else torch.complex64)

    # ---- compilation -------------------------------------------------------------------------
    def _parse(self, circuit: QuantumCircuit, index: dict) -> tuple[list[ParsedGate], list]:
        return parse_circuit(circuit, index)

    def _schedule(self) -> None:
        """Fix each block's local qubit order and how it meets the state (static, compile time).

        A block whose qubits are adjacent axes of the state is applied where it stands, as a matmul on a
        (B, L, 2^k, R) view: no copy. Otherwise the state is first permuted so the block's qubits trail.
        """
        axes = list(range(self.num_qubits - 1, -1, -1))  # Qiskit index order: qubit 0 is the last axis
        self.steps: list[tuple[list[int] | None, int, int]] = []  # (permutation or None, L, R)
        n = self.num_qubits
        for block in self.blocks:
            k = len(block.qubits)
            pos = sorted(axes.index(q) for q in block.qubits)
            if pos[-1] - pos[0] == k - 1:  # adjacent axes: apply in place
                block.qubits = axes[pos[0] : pos[0] + k]
                self.steps.append((None, 2 ** pos[0], 2 ** (n - pos[0] - k)))
                continue
            if ring_span(set(pos), n) == k:  # adjacent across the ends: rotate them to the end
                start = next(i for i in pos if (i - 1) % n not in pos)
                shift = (start + k) % n
                new_axes = axes[shift:] + axes[:shift]
            else:  # scattered: move them to the end
                new_axes = [q for q in axes if q not in block.qubits] + [q for q in axes if q in block.qubits]
            self.steps.append(([axes.index(q) for q in new_axes], 2 ** (n - k), 1))
            axes = new_axes
            block.qubits = axes[n - k :]
        self.final_axes = axes

    def _compile_readout(self, observables: list[SparsePauliOp]) -> None:
        """Diagonal Pauli terms become one (2^n, n_obs) matrix in the final axis order; others are gathered."""
        n = self.num_qubits
        diag = np.zeros((2**n, len(observables)))
        self.offdiag: list[tuple[int, complex, np.ndarray, np.ndarray]] = []
        bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1  # (2^n, n), bit q of each index
        for o, obs in enumerate(observables):
            if obs.num_qubits != n:
                raise QSetFitError(f"observable {o} acts on {obs.num_qubits} qubits, the circuit has {n}")
            for pauli, coeff in zip(obs.paulis, obs.coeffs, strict=True):
                if not pauli.x.any():
                    sign = (-1.0) ** (bits[:, pauli.z].sum(axis=1))
                    diag[:, o] += (coeff * sign).real
                else:
                    m = pauli.to_matrix(sparse=True).tocsr()
                    self.offdiag.append((o, complex(coeff), m.indices.copy(), m.data.copy()))
        # Reorder rows from Qiskit index order into the final axis order of the state tensor.
        canon = list(range(n - 1, -1, -1))
        d = diag.reshape([2] * n + [len(observables)]).transpose([canon.index(q) for q in self.final_axes] + [n])
        real = torch.float64 if self.dtype in (torch.float64, torch.complex128) else torch.float32
        self.register_buffer("diag", torch.tensor(d.reshape(2**n, -1).copy(), dtype=real), persistent=False)
        self.to_canonical = [self.final_axes.index(q) for q in canon]
        for i, (_, _, cols, vals) in enumerate(self.offdiag):
            self.register_buffer(f"od_cols_{i}", torch.tensor(cols, dtype=torch.long), persistent=False)
            self.register_buffer(f"od_vals_{i}", torch.tensor(vals, dtype=self._complex()), persistent=False)

    def _complex(self) -> torch.dtype:
        return torch.complex128 if self.dtype in (torch.float64, torch.complex128) else torch.complex64

    # ---- execution ---------------------------------------------------------------------------
    def _angles(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = self.const + self.a_w @ w  # (n_slots,)
        return base, x @ self.a_x.T  # (n_slots,), (B, n_slots)

    def _group_blocks(self) -> None:
        """Group blocks with the same gate pattern (repeated layers): each group is built in one batched pass.

        Building block matrices costs a few small torch ops per gate; batching identical patterns divides
        that count (the overhead that dominates small heads) by the number of repeats.
        """
        groups: dict[tuple, list[int]] = {}
        for bi, block in enumerate(self.blocks):
            pos = {q: i for i, q in enumerate(block.qubits)}
            template = tuple(
                (g.name, tuple(3 + pos[q] for q in reversed(g.qubits)), g.input_dependent, len(g.slots))
                for g in (self.gates[gi] for gi in block.gates)
            )
            groups.setdefault((len(block.qubits), template), []).append(bi)
        self.groups = []
        for gi, ((k, template), members) in enumerate(groups.items()):
            slots = [[s for g in self.blocks[bi].gates for s in self.gates[g].slots] for bi in members]
            self.register_buffer(
                f"group_slots_{gi}", torch.tensor(slots, dtype=torch.long).reshape(len(members), -1), persistent=False
            )
            self.groups.append((k, template, members))

    def _block_matrices(self, base: torch.Tensor, xin: torch.Tensor) -> list[torch.Tensor]:
        """Every block's (b, 2^k, 2^k) matrix X (new_state = state @ X, X = U^T), b = 1 or B."""
        mats: list[torch.Tensor] = [base] * len(self.blocks)
        for gi, (k, template, members) in enumerate(self.groups):
            slots = getattr(self, f"group_slots_{gi}")  # (G, n_angles of the pattern)
            d = 2**k
            m = torch.eye(d, dtype=self.dtype, device=base.device).reshape(1, 1, d, *([2] * k))
            col = 0
            for name, axes, input_dependent, n_angles in template:
                if n_angles:
                    idx = slots[:, col : col + n_angles]  # (G, n)
                    col += n_angles
                    theta = base[idx][:, None, :]  # (G, 1, n)
                    if input_dependent:
                        theta = theta + xin[:, idx].transpose(0, 1)  # (G, B, n)
                    mat = angle_matrix(name, theta.reshape(-1, n_angles), self.dtype)
                    mat = mat.reshape(theta.shape[0], theta.shape[1], *mat.shape[1:])  # (G, 1 or B, g, g)
                else:
                    mat = getattr(self, f"fixed_{name}").to(self.dtype)[None, None]  # complex buffers skip .double()
                m = _apply(m, mat, list(axes))
            m = m.reshape(m.shape[0], m.shape[1], d, d)
            if m.shape[0] == 1 and len(members) > 1:  # no angle in the pattern: one matrix for all members
                m = m.expand(len(members), *m.shape[1:])
            for i, bi in enumerate(members):
                mats[bi] = m[i]
        return mats

    def _readout(self, state: torch.Tensor) -> torch.Tensor:
        """(B, n_obs) expectation values of a final-order state (general observables)."""
        batch = state.shape[0]
        out = probabilities(state) @ self.diag  # (B, n_obs)
        if self.offdiag:
            psi = permute(state, self.to_canonical, self.num_qubits).to(self._complex())
            extra = [torch.zeros(batch, dtype=out.dtype, device=out.device) for _ in range(out.shape[1])]
            for i, (o, coeff, _, _) in enumerate(self.offdiag):
                cols, vals = getattr(self, f"od_cols_{i}"), getattr(self, f"od_vals_{i}").to(psi.dtype)
                val = (psi.conj() * vals * psi[:, cols]).sum(dim=1)  # <psi|P|psi>
                extra[o] = extra[o] + (coeff * val).real
            out = out + torch.stack(extra, dim=1)
        return out

    def _cache_chunk(self, device: torch.device) -> int:
        """Rows per chunk so that a state chunk stays in the CPU cache; GPUs take the whole batch."""
        if device.type != "cpu":
            return 1 << 30
        per_row = 2**self.num_qubits * torch.empty((), dtype=self.dtype).element_size()
        return max(2, self.cache_bytes // per_row)

    def _forward(self, x: torch.Tensor, w: torch.Tensor, initial_state: torch.Tensor | None = None) -> torch.Tensor:
        real = self.a_w.dtype
        x, w = x.to(real), w.to(real)
        batch = x.shape[0]
        self._check_initial_state(initial_state)
        base, xin = self._angles(x, w)  # (n_slots,), (B, n_slots)
        mats = self._block_matrices(base, xin)  # each (1 or B, d, d)
        if initial_state is not None and initial_state.is_complex() and not mats[0].is_complex():
            mats = [m.to(self._complex()) for m in mats]  # real gates, complex state: evolve in complex
        if not self.offdiag and self.gradient == "adjoint":
            chunk = min(self._cache_chunk(x.device), batch)
            return AdjointEvolve.apply(self.plan, chunk, self.diag, initial_state, batch, *mats)
        return self._forward_autograd(mats, batch, initial_state)

    def _check_initial_state(self, initial_state: torch.Tensor | None) -> None:
        dim = 2**self.num_qubits
        if initial_state is not None and (initial_state.dim() != 2 or initial_state.shape[1] != dim):
            raise QSetFitError(
                f"initial_state must have shape (batch, {dim}): 2**{self.num_qubits} amplitudes for the circuit's "
                f"{self.num_qubits} qubits, got {tuple(initial_state.shape)}"
            )

    def _forward_autograd(
        self, mats: list[torch.Tensor], batch: int, initial_state: torch.Tensor | None
    ) -> torch.Tensor:
        """Plain autograd over stored states, in checkpointed chunks when they would exceed the memory bound."""
        per_row = 2**self.num_qubits * torch.empty((), dtype=self.dtype).element_size()
        chunk = max(1, self.max_memory_bytes // (per_row * (2 * len(self.blocks) + 4)))

        def run(rows: slice, init: torch.Tensor | None, *ms: torch.Tensor) -> torch.Tensor:
            n_rows = rows.stop - rows.start
            dev, dtype = ms[0].device, ms[0].dtype
            state = zero_state(n_rows, self.num_qubits, dtype, dev) if init is None else init.to(dtype)
            return self._readout(evolve(state, list(ms), self.plan, rows))

        outs = []
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            init = None if initial_state is None else initial_state[rows]
            if chunk < batch and torch.is_grad_enabled():  # keep only inputs; recompute in backward
                outs.append(checkpoint(run, rows, init, *mats, use_reentrant=False))
            else:
                outs.append(run(rows, init, *mats))
        return torch.cat(outs, dim=0)


def _apply(m: torch.Tensor, mat: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Apply (G', b', g, g) ``mat`` to ``m`` (G, b, d, 2, ..., 2) on ``axes`` (big-endian gate order).

    G (group) and b (batch) broadcast against G' and b'.
    """
    g, nd = len(axes), m.dim()
    tail = list(range(nd - g, nd))
    moved = m.movedim(axes, tail)
    shape = moved.shape
    flat = moved.reshape(shape[0], shape[1], -1, 2**g) @ mat.transpose(-1, -2)
    return flat.reshape(flat.shape[0], flat.shape[1], *shape[2:]).movedim(tail, axes)


def _is_real(obs: SparsePauliOp) -> bool:
    """True when <psi|O|psi> of a real state needs no complex arithmetic (no Y factor, real coefficients)."""
    ny = (obs.paulis.x & obs.paulis.z).sum(axis=1)
    return bool(np.all(ny == 0) and np.allclose(np.imag(obs.coeffs), 0))


TORCH_OPTIONS = ("fusion_qubits", "gradient", "real_path", "cache_bytes", "max_memory_bytes")


def _build(head_circuit: Any, dtype: torch.dtype, options: dict[str, Any]) -> TorchStatevectorEngine:
    unknown = sorted(set(options) - set(TORCH_OPTIONS))
    if unknown:
        guess = did_you_mean(unknown[0], TORCH_OPTIONS)
        hint = f"; did you mean {guess[0]!r}" if guess else ""
        raise QSetFitError(
            f"unknown option {unknown[0]!r} for the torch engine{hint}; options: {', '.join(TORCH_OPTIONS)}"
        )
    return TorchStatevectorEngine(
        head_circuit.circuit,
        head_circuit.inputs,
        head_circuit.weights,
        head_circuit.observables,
        dtype=dtype,
        **options,
    )


def torch_float64(head_circuit: Any, **options: Any) -> TorchStatevectorEngine:
    """The registry's ``torch`` engine: complex128/float64 statevectors."""
    return _build(head_circuit, torch.float64, options)


def torch_float32(head_circuit: Any, **options: Any) -> TorchStatevectorEngine:
    """The registry's ``torch-float32`` engine: half the memory, ~1e-6 agreement."""
    return _build(head_circuit, torch.float32, options)
