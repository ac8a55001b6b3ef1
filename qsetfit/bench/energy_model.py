"""The model behind ``qsetfit energy``: its constants with their sources, the arithmetic, the classical curve.

``qsetfit.bench.energy_qpu`` builds the QPU curve from a backend profile and ``qsetfit.bench.energy`` puts the
two curves side by side; both use the ``Point`` and ``Constant`` records and the formulas defined here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

from qsetfit.bench import energy_measure as measure
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError

# ~25 kW: the dilution refrigerator's compressor and the control electronics (the chip: microwatts). D-Wave 2X
# "slightly less than 25 kilowatts" (IEEE Spectrum 2015); Google Sycamore ~26 kW (Villalonga et al., Quantum Sci.
# Technol. 5, 034003, 2020). No IBM per-system figure could be checked offline: set qpu_power_w in the profile.
DEFAULT_QPU_POWER_W = 25_000.0
QPU_POWER_SOURCE = (
    "default: superconducting QPU system incl. dilution refrigerator and control electronics, "
    "~25 kW (D-Wave 2X <25 kW, IEEE Spectrum 2015; Google Sycamore ~26 kW, Villalonga et al. "
    "2020); set qpu_power_w in the profile"
)
DEFAULT_CPU_CORE_POWER_W = 5.0
CPU_POWER_SOURCE = (
    "assumed: server CPU TDP / cores (AMD EPYC 7763 280 W / 64 = 4.4 W; Intel Xeon Platinum "
    "8380 270 W / 40 = 6.8 W); --cpu-core-power-w"
)
DEFAULT_GPU_POWER_W = 700.0
GPU_POWER_SOURCE = "assumed: NVIDIA H100 SXM board power limit, 700 W (datasheet); an upper bound; --gpu-power-w"
CLASSICAL_LAW = "E(Q) = E(Q0) x 2^(Q-Q0) x gates(Q) / gates(Q0), Q0 = widest measured width"
QPU_LAW = "E per 1,000 = 1000 x P x (shots x (T_circuit + T_rep_delay) + T_overhead)"


@dataclass(frozen=True)
class Constant:
    """A number the model uses: its value, unit, and where it comes from."""

    name: str
    value: Any
    unit: str
    source: str


@dataclass(frozen=True)
class Point:
    """Energy per 1,000 inferences of one curve ("cpu", "cuda" or "qpu") at one width, and how it was had.

    ``method`` is "measured", "transpiled" (ISA duration from the target), "scaled" (a declared duration scaled
    by depth) or "extrapolated"; ``source`` names the energy source. Optional fields apply to one side only.
    """

    curve: str
    qubits: int
    joules_per_1000: float
    seconds_per_inference: float
    method: str
    source: str
    samples: int | None = None
    cpu_seconds_per_inference: float | None = None
    statevector_bytes: int | None = None
    shots: int | None = None
    circuit_duration_s: float | None = None
    rep_delay_s: float | None = None
    isa_depth: int | None = None
    two_qubit_gates: int | None = None
    success_probability: float | None = None


# ---- arithmetic ----------------------------------------------------------------------------------------
def joules_per_1000(power_w: float, seconds_per_inference: float) -> float:
    """Energy of 1,000 inferences at ``power_w`` watts for ``seconds_per_inference`` each."""
    return 1000.0 * power_w * seconds_per_inference


def qpu_seconds_per_inference(
    shots: int, circuit_duration_s: float, rep_delay_s: float, overhead_s: float = 0.0
) -> float:
    """QPU seconds one input holds the device: shots x (circuit + repetition delay) + per-circuit overhead."""
    return shots * (circuit_duration_s + rep_delay_s) + overhead_s


def scale_statevector(value: float, q0: int, q: int, gates0: int, gates: int) -> float:
    """A statevector cost measured at ``q0`` carried to ``q``: x 2^(q-q0) amplitudes x gates/gates0 gates."""
    return value * 2.0 ** (q - q0) * gates / gates0


def growth_per_qubit(qubits: Sequence[int], values: Sequence[float]) -> float | None:
    """Factor per added qubit of a least-squares fit of log2(values) against qubits (None under 2 points)."""
    if len(qubits) < 2:
        return None
    mq = sum(qubits) / len(qubits)
    logs = [math.log2(v) for v in values]
    ml = sum(logs) / len(logs)
    slope = sum((q - mq) * (v - ml) for q, v in zip(qubits, logs, strict=False)) / sum((q - mq) ** 2 for q in qubits)
    return 2.0**slope


def break_even(qubits: Sequence[int], classical: Sequence[float], quantum: Sequence[float]) -> float | None:
    """First width where the classical energy reaches the quantum one (log-linear between widths); None if never."""
    gaps = [math.log(c) - math.log(q) for c, q in zip(classical, quantum, strict=False)]
    if gaps and gaps[0] >= 0:
        return float(qubits[0])
    for i in range(1, len(gaps)):
        if gaps[i - 1] < 0 <= gaps[i]:
            return qubits[i - 1] + (qubits[i] - qubits[i - 1]) * -gaps[i - 1] / (gaps[i] - gaps[i - 1])
    return None


# ---- the classical curve -------------------------------------------------------------------------------
def classical_points(
    config: HeadConfig, readings: Sequence[measure.Reading], widths: Sequence[int], *, power_w: float
) -> list[Point]:
    """Measured points from ``readings``, then the other ``widths`` extrapolated from the widest reading.

    A reading without counter joules costs ``power_w`` x process CPU time on "cpu" and x wall time on "cuda".
    """
    if not readings:
        raise QSetFitError(
            f"no width could be measured (the head's {config.qubits} qubits exceed the memory or "
            "time budget); raise --time-budget or lower --samples"
        )
    points = []
    for r in readings:
        wall, cpu = r.wall_s / r.inferences, r.cpu_s / r.inferences
        if r.joules is not None:
            energy, source = 1000.0 * r.joules / r.inferences, r.counter
        else:
            energy = joules_per_1000(power_w, cpu if r.device == "cpu" else wall)
            source = f"{'process CPU' if r.device == 'cpu' else 'wall'} time x {power_w:g} W"
        points.append(
            Point(
                r.device,
                r.qubits,
                energy,
                wall,
                "measured",
                source,
                samples=r.samples,
                cpu_seconds_per_inference=cpu,
                statevector_bytes=r.state_bytes,
            )
        )
    anchor, last = readings[-1], points[-1]
    for q in sorted(set(widths) - {r.qubits for r in readings}):
        gates = measure.family_circuit(config, q).circuit.size()
        scale = scale_statevector(1.0, anchor.qubits, q, anchor.gates, gates)
        points.append(
            Point(
                anchor.device,
                q,
                last.joules_per_1000 * scale,
                last.seconds_per_inference * scale,
                "extrapolated",
                f"from {anchor.qubits} qubits ({last.source})",
                statevector_bytes=2**q * measure.BYTES_PER_AMPLITUDE,
            )
        )
    return sorted(points, key=lambda p: p.qubits)


def classical_constants(
    device: str, readings: Sequence[measure.Reading], power_w: float, power_source: str
) -> list[Constant]:
    """The classical side's constants: energy source, power (without a counter), growth, extrapolation law."""
    first = readings[0]
    if first.joules is None:
        clock = "process CPU time" if device == "cpu" else "wall time"
        out = [
            Constant(f"{device}_energy", f"{clock} x power", "", first.counter),
            Constant(f"{device}_power_w", power_w, "W per busy core" if device == "cpu" else "W", power_source),
        ]
    else:
        out = [Constant(f"{device}_energy", first.counter, "", "codecarbon; counts the whole CPU package or GPU")]
    growth = growth_per_qubit([r.qubits for r in readings], [r.wall_s / r.inferences for r in readings])
    if growth is not None:
        out.append(
            Constant(
                f"{device}_growth_per_qubit",
                round(growth, 3),
                "x time per added qubit",
                f"least-squares fit over measured widths {first.qubits}-{readings[-1].qubits} "
                "(the extrapolation assumes 2 x gate ratio)",
            )
        )
    out.append(Constant(f"{device}_extrapolation", CLASSICAL_LAW, "", "statevector memory and work grow as 2^Q"))
    return out
