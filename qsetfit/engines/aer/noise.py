"""Noise for the Aer engines: Aer ``NoiseModel``s from noise profiles, device ISA circuits, and readout error.

Three traps shape this module (QISKIT-PITFALLS 6):

- ``NoiseModel.from_backend`` noise only hits the device's ISA gates, so device noise is applied to the
  circuit transpiled to that device (``device_isa_circuit``), never to the logical ry/cx circuit.
- A transpiled circuit lives on the device's 133+ physical qubits; it is compacted to the qubits it uses and
  the noise model restricted to them, so Aer simulates 8 qubits, not 133.
- Aer's ``EstimatorV2`` computes <O> without measuring, so readout error is silently ignored. Readout is
  honoured exactly instead: with independent flips P(read 1|0) = p01 and P(read 0|1) = p10 on qubit k, the
  measured +-1 value of a Pauli factor P_k has conditional mean ``a_k + b_k P_k`` with ``b_k = 1 - p01 - p10``
  and ``a_k = p10 - p01``; flips on different qubits are independent, so a measured Pauli string has mean
  ``< prod_k (a_k I + b_k P_k) >``. ``readout_dressed`` rewrites each observable into that operator
  (``<Z>`` -> ``b <Z> + a``), which Aer then evaluates exactly. Shot-sampling engines measure for real and
  let Aer apply the same ``ReadoutError``s to the sampled bits instead.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any
from collections.abc import Sequence

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qsetfit.errors import QSetFitError
from qsetfit.profiles import NoiseProfile

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def fake_backend(name: str) -> Any:
    """A ``qiskit_ibm_runtime.fake_provider`` backend by name: ``"fake_torino"`` -> ``FakeTorino()``."""
    try:
        import qiskit_ibm_runtime.fake_provider as fake_provider
    except ModuleNotFoundError as exc:  # pragma: no cover - it is a dependency
        raise QSetFitError("device noise needs qiskit-ibm-runtime: pip install qiskit-ibm-runtime") from exc
    if not name.startswith("fake_"):
        raise QSetFitError(f"device noise needs a fake backend name such as 'fake_torino', got {name!r}")
    stem = "Fake" + "".join(part.capitalize() for part in name.split("_")[1:])
    for cls_name in (stem, stem + "V2"):
        cls = getattr(fake_provider, cls_name, None)
        if cls is not None:
            return cls()
    known = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and not n.startswith("FakeProvider"))
    raise QSetFitError(
        f"no fake backend {name!r} ({stem}) in qiskit_ibm_runtime.fake_provider; known: {', '.join(known)}"
    )


@functools.lru_cache(maxsize=16)
def _device_noise_on(name: str, physical: tuple[int, ...]) -> Any:
    """``_device_noise_model`` on ``physical`` only, renumbered 0..len-1, built from those qubits alone.

    ``NoiseModel.from_backend`` reads only ``version``, ``operation_names``, ``target`` and ``dt`` of a V2
    backend, so it is handed the device target cut down to ``physical`` (``_sub_target``): the same errors as
    building all 133 fake_torino qubits and keeping these (~4.5 s, most of a narrow local-mode prediction), in
    ~0.3 s.

    ``from_backend`` reads read-out error from the target, which keeps only the mean of P(1|0) and P(0|1);
    the fake backend's own simulator (Runtime local testing mode on the device) uses both from its properties.
    A symmetric flip misses the ``p10 - p01`` offset of <Z> (+0.05 on fake_manila qubit 2), so the read-out
    errors are overridden by the asymmetric ones from the properties.
    """
    from types import SimpleNamespace

    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.noise.device import basic_device_readout_errors

    backend = fake_backend(name)
    target = _sub_target(backend.target, physical)
    model = NoiseModel.from_backend(
        SimpleNamespace(version=2, operation_names=list(target.operation_names), target=target, dt=target.dt)
    )
    model._custom_noise_passes.clear()  # delay noise: ISA circuits here are unscheduled (no delays) -> no per-run pass
    properties = backend.properties()
    index = {q: i for i, q in enumerate(physical)}
    if properties is not None:
        for qubits, error in basic_device_readout_errors(properties):
            if all(q in index for q in qubits):
                model.add_readout_error(error, [index[q] for q in qubits], warnings=False)
    return model


def build_noise_model(profile: NoiseProfile, physical_qubits: Sequence[int] | None = None) -> Any | None:
    """The Aer ``NoiseModel`` of a noise profile (None when ideal).

    Args:
        profile: the noise profile.
        physical_qubits: for kind "device": the device qubits the compacted circuit uses, in order; the
            returned model acts on qubits 0..len-1 with the errors of those device qubits (cached per set).
    """
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    if profile.is_ideal:
        return None
    if profile.kind == "device":
        if physical_qubits is None:
            raise QSetFitError("device noise needs the physical qubits of the transpiled circuit")
        return copy.deepcopy(_device_noise_on(profile.backend, tuple(int(q) for q in physical_qubits)))  # cached
    model = NoiseModel()
    if profile.p1:
        model.add_all_qubit_quantum_error(depolarizing_error(profile.p1, 1), list(profile.gates_1q))
    if profile.p2:
        model.add_all_qubit_quantum_error(depolarizing_error(profile.p2, 2), list(profile.gates_2q))
    p01, p10 = profile.readout_flips
    if p01 or p10:
        model.add_all_qubit_readout_error(ReadoutError([[1 - p01, p01], [p10, 1 - p10]]))
    return model


def readout_flips(model: Any | None, num_qubits: int) -> np.ndarray:
    """(num_qubits, 2) array of (p01, p10) per qubit, from the ``ReadoutError``s of an Aer noise model."""
    flips = np.zeros((num_qubits, 2))
    if model is None:
        return flips
    default = model._default_readout_error
    for q in range(num_qubits):
        error = model._local_readout_errors.get((q,), default)
        if error is not None:
            probs = np.asarray(error.probabilities)  # rows: prepared 0, 1; columns: read 0, 1
            flips[q] = probs[0, 1], probs[1, 0]
    return flips


def readout_dressed(observable: SparsePauliOp, flips: np.ndarray) -> SparsePauliOp:
    """The operator whose ideal <.> equals ``observable``'s <.> read through independent readout flips.

    Each non-identity factor P_k becomes ``(p10 - p01) I + (1 - p01 - p10) P_k`` (module docstring).

    Args:
        observable: a Pauli sum on ``len(flips)`` qubits.
        flips: (num_qubits, 2) float64, (p01, p10) per qubit.
    """
    if not np.any(flips):
        return observable
    terms: list[tuple[str, list[int], complex]] = []
    for pauli, coeff in zip(observable.paulis, observable.coeffs, strict=True):
        label = pauli.to_label().lstrip("-i")  # qubit q is character -1-q
        support = [q for q in range(observable.num_qubits) if label[-1 - q] != "I"]
        letters = {q: label[-1 - q] for q in support}
        partial: list[tuple[list[int], complex]] = [([], complex(coeff))]
        for q in support:
            p01, p10 = flips[q]
            a, b = p10 - p01, 1.0 - p01 - p10
            partial = [(s, c * a) for s, c in partial] + [([*s, q], c * b) for s, c in partial]
        terms += [("".join(letters[q] for q in s), s, c) for s, c in partial]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=observable.num_qubits).simplify(atol=0.0)


def device_isa_circuit(
    circuit: QuantumCircuit,
    observables: Sequence[SparsePauliOp],
    backend_name: str,
    *,
    optimization_level: int,
    seed_transpiler: int,
    narrow: bool = False,
) -> tuple[QuantumCircuit, list[SparsePauliOp], list[int]]:
    """Transpile once to a device's ISA, then compact to the physical qubits the result touches.

    ``narrow``: when the device transpile routes through more qubits than the circuit has (a 10-qubit ring-like
    head takes a 12-qubit heavy-hex ring on fake_torino), transpile again within that many connected qubits of
    them (the worst read-out dropped first). A noisy density matrix costs 4^n per gate, so that is ~40x cheaper
    to simulate, at the price of more SWAPs than the device transpile (515 instead of 281 CZ for that head).

    Returns:
        (compact ISA circuit, observables laid out on it, the device qubit of each compact qubit). The compact
        circuit's ``metadata["device_layout"]`` holds the device qubit of each logical qubit (the final layout),
        so a caller needs no second transpile to report it.
    """
    from qiskit.transpiler import generate_preset_pass_manager

    backend = fake_backend(backend_name)
    pm = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=backend, seed_transpiler=seed_transpiler
    )
    isa = pm.run(circuit)
    final = isa.layout.final_index_layout() if isa.layout is not None else list(range(circuit.num_qubits))
    used = {isa.find_bit(q).index for inst in isa.data for q in inst.qubits} | set(final)
    physical = sorted(used)
    if narrow and len(physical) > circuit.num_qubits:
        return _narrowed(
            circuit,
            observables,
            backend,
            physical,
            optimization_level=optimization_level,
            seed_transpiler=seed_transpiler,
        )
    index = {q: i for i, q in enumerate(physical)}
    compact = QuantumCircuit(len(physical), global_phase=isa.global_phase, name=f"{circuit.name}_isa")
    for inst in isa.data:
        compact.append(inst.operation, [index[isa.find_bit(q).index] for q in inst.qubits])
    layout = [index[final[v]] for v in range(circuit.num_qubits)]
    compact.metadata = {"device_layout": [int(final[v]) for v in range(circuit.num_qubits)]}
    laid_out = [o.apply_layout(layout, num_qubits=len(physical)) for o in observables]
    logger.info(
        "transpiled %s to %s (optimization_level=%d): %d gates on device qubits %s",
        circuit.name,
        backend_name,
        optimization_level,
        compact.size(),
        physical,
    )
    return compact, laid_out, physical


def _narrowed(
    circuit: QuantumCircuit,
    observables: Sequence[SparsePauliOp],
    backend: Any,
    used: Sequence[int],
    *,
    optimization_level: int,
    seed_transpiler: int,
) -> tuple[QuantumCircuit, list[SparsePauliOp], list[int]]:
    """The circuit transpiled again within ``circuit.num_qubits`` connected qubits of ``used`` (``narrow=True``)."""
    from qiskit.transpiler import generate_preset_pass_manager

    width = circuit.num_qubits
    keep = _connected_subset(backend, used, width)
    pm = generate_preset_pass_manager(
        optimization_level=optimization_level, target=_sub_target(backend.target, keep), seed_transpiler=seed_transpiler
    )
    isa = pm.run(circuit)
    final = isa.layout.final_index_layout()
    isa.metadata = {"device_layout": [keep[final[v]] for v in range(width)]}
    logger.info("routed %s within device qubits %s: %d gates", circuit.name, keep, isa.size())
    return isa, [o.apply_layout(isa.layout) for o in observables], keep


def _connected_subset(backend: Any, qubits: Sequence[int], size: int) -> list[int]:
    """``size`` of ``qubits`` that stay connected on the device, dropping the worst read-out first."""
    import rustworkx as rx

    graph = backend.coupling_map.graph.to_undirected()
    keep = sorted(qubits)
    readout = {q: backend.target["measure"][(q,)].error or 0.0 for q in keep}
    while len(keep) > size:  # a connected graph always has a vertex whose removal keeps it connected
        for q in sorted(keep, key=lambda q: -readout[q]):
            rest = [p for p in keep if p != q]
            if rx.is_connected(graph.subgraph(rest)):
                keep = rest
                break
    return keep


def _sub_target(target: Any, physical: Sequence[int]) -> Any:
    """The device ``Target`` on ``physical`` only, renumbered 0..len-1 (its gates, errors and durations)."""
    import inspect

    from qiskit.transpiler import Target

    index = {q: i for i, q in enumerate(physical)}
    properties = target.qubit_properties
    out = Target(
        num_qubits=len(physical),
        dt=target.dt,
        qubit_properties=[properties[q] for q in physical] if properties else None,
    )
    for name in target.operation_names:
        operation, table = target.operation_from_name(name), target[name]
        if inspect.isclass(operation) or table is None or None in table:  # control flow, or global instructions
            out.add_instruction(operation, name=name)
            continue
        out.add_instruction(
            operation,
            {tuple(index[q] for q in qargs): props for qargs, props in table.items() if all(q in index for q in qargs)},
            name=name,
        )
    return out
