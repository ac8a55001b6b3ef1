"""The measured half of ``qsetfit energy``: module 2 timed on the torch engine at growing widths.

Each width runs the head's circuit family (its C, N, R and Qm at another Q) on ``samples`` random inputs.
Energy comes from a hardware counter through codecarbon (RAPL on CPUs, NVML on GPUs) when codecarbon is
installed (``pip install qsetfit[energy]``) *and* the counter is really readable here; otherwise the reading
carries no joules and ``qsetfit.bench.energy`` applies power x time with the power stated. Widths stop where one
input would not fit the time budget or the memory budget; ``qsetfit.bench.energy`` extrapolates beyond.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Callable, Sequence

import torch

from qsetfit.head.circuits import HeadCircuit, HeadConfig, build_head_circuit
from qsetfit.engines.registry import make_engine

if TYPE_CHECKING:
    from qsetfit.engines.torch.statevector import TorchStatevectorEngine

BYTES_PER_AMPLITUDE = 8  # float64: the head is RY/CNOT with Z read-outs, so the engine takes its real path
MEMORY_FACTOR = 4  # working copies of one input's statevector the engine may hold at once (stated, not measured)
MIN_TIMED_SECONDS = 0.2  # repeat short passes until this much wall time, so tiny circuits are not all noise
MAX_REPEATS = 50


@dataclass(frozen=True)
class Reading:
    """One timed forward pass of module 2 at one width (``inferences`` = samples x repeats).

    Attributes:
        qubits: Q of the circuit timed.
        device: "cpu" or "cuda".
        samples: distinct inputs timed.
        inferences: forward evaluations in the timed span (samples x repeats).
        wall_s: wall-clock seconds of the timed span.
        cpu_s: process CPU seconds of the timed span (every thread of this process).
        joules: energy from a hardware counter over the span, or None where there is none.
        counter: what measured ``joules``, or why there is no counter when ``joules`` is None.
        gates: gates in the logical circuit (the extrapolation's gate-count ratio).
        state_bytes: bytes of one input's statevector on the engine.
    """

    qubits: int
    device: str
    samples: int
    inferences: int
    wall_s: float
    cpu_s: float
    joules: float | None
    counter: str
    gates: int
    state_bytes: int


def family_circuit(config: HeadConfig, qubits: int) -> HeadCircuit:
    """Module 2 of ``config``'s family at width ``qubits``: same connectivity, re-uploads, layers, read-outs."""
    wide = dataclasses.replace(config, qubits=qubits, encoders=0, measured=min(config.measured, qubits))
    return build_head_circuit(wide)


class CodeCarbonMeter:
    """Joules between ``start`` and ``stop`` from codecarbon's counters.

    RAPL and NVML count the whole CPU package or GPU, not this process alone: on a busy machine the figure
    includes the neighbours' work, which the table's source column says.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.source = "codecarbon RAPL counter (CPU package)" if device == "cpu" else "codecarbon NVML counter (GPU)"
        self._tracker: Any = None

    def start(self) -> None:
        """Start a fresh offline tracker (no network, no file)."""
        from codecarbon import OfflineEmissionsTracker

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._tracker = OfflineEmissionsTracker(
                country_iso_code="USA",
                save_to_file=False,
                log_level="error",
                measure_power_secs=1,
                allow_multiple_runs=True,
            )
        self._tracker.start()

    def stop(self) -> float:
        """Stop the tracker; the CPU or GPU energy of the span in joules."""
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        kwh = data.cpu_energy if self.device == "cpu" else data.gpu_energy
        return float(kwh) * 3.6e6


def counter_meter(device: str) -> tuple[CodeCarbonMeter | None, str]:
    """(meter, "") when codecarbon is importable and its counter (RAPL for "cpu", NVML for "cuda") is readable
    here; else (None, why not)."""
    try:
        if device == "cpu":
            from codecarbon.core.cpu import is_rapl_available as present
        else:
            from codecarbon.core.gpu import is_gpu_details_available as present
    except ImportError:
        return None, "no energy counter: codecarbon is not installed (pip install 'qsetfit[energy]')"
    try:
        found = present()
    except Exception as exc:  # noqa: BLE001 - a probe that fails means no counter, not a failed command
        found, why = False, f" ({type(exc).__name__})"
    else:
        why = ""
    if not found:
        return None, f"no energy counter: codecarbon finds no {'RAPL' if device == 'cpu' else 'NVML'} counter here{why}"
    return CodeCarbonMeter(device), ""


def time_forward(
    engine: Any, x: torch.Tensor, w: torch.Tensor, *, rows_per_call: int, repeats: int = 1, meter: Any = None
) -> tuple[float, float, float | None]:
    """(wall s, process CPU s, counter joules or None) of ``repeats`` no-grad passes over x (B, Q), in chunks."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    if meter is not None:
        meter.start()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for _ in range(repeats):
            for start in range(0, x.shape[0], rows_per_call):
                engine(x[start : start + rows_per_call], w)
    sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    joules = meter.stop() if meter is not None else None
    return wall, cpu, joules


def measure_width(
    config: HeadConfig,
    qubits: int,
    *,
    samples: int,
    device: str,
    time_budget_s: float,
    memory_budget_bytes: int,
    weights: torch.Tensor | None = None,
    meter: Any = None,
    no_counter: str = "no energy counter",
    seed: int = 0,
) -> Reading:
    """Time module 2 at ``qubits`` on up to ``samples`` inputs, as many as ``time_budget_s`` allows.

    Inputs are uniform in [-1, 1] (the range of module 1's read-outs); the weights are ``weights`` when they
    fit the circuit (the trained head at its own width), else seeded uniform angles in [-pi/4, pi/4]. One
    warm-up input is run first and not counted.
    """
    hc = family_circuit(config, qubits)
    engine = cast("TorchStatevectorEngine", make_engine(hc, "torch").to(device))  # "torch": the statevector engine
    gen = torch.Generator().manual_seed(seed + qubits)
    x = torch.rand(samples, qubits, generator=gen, dtype=torch.float64) * 2 - 1  # (S, Q)
    if weights is None or weights.shape != (len(hc.weights),):
        weights = (torch.rand(len(hc.weights), generator=gen, dtype=torch.float64) * 2 - 1) * (math.pi / 4)
    x, w = x.to(device), weights.detach().to(device=device, dtype=torch.float64)
    state_bytes = 2**qubits * torch.empty((), dtype=engine.dtype).element_size()
    rows = max(1, memory_budget_bytes // (state_bytes * MEMORY_FACTOR))
    warm, _, _ = time_forward(engine, x[:1], w, rows_per_call=1)
    n = max(1, min(samples, int(time_budget_s / max(warm, 1e-9))))
    repeats = max(1, min(MAX_REPEATS, math.ceil(MIN_TIMED_SECONDS / max(warm * n, 1e-9))))
    wall, cpu, joules = time_forward(engine, x[:n], w, rows_per_call=rows, repeats=repeats, meter=meter)
    return Reading(
        qubits=qubits,
        device=device,
        samples=n,
        inferences=n * repeats,
        wall_s=wall,
        cpu_s=cpu,
        joules=joules,
        counter=meter.source if meter is not None else no_counter,
        gates=hc.circuit.size(),
        state_bytes=state_bytes,
    )


def measure_widths(
    config: HeadConfig,
    widths: Sequence[int],
    *,
    device: str,
    samples: int,
    max_qubits: int,
    time_budget_s: float,
    memory_budget_bytes: int,
    weights: torch.Tensor | None = None,
    on_width: Callable[[str, int], None] | None = None,
) -> list[Reading]:
    """Readings at increasing ``widths`` until a width passes ``max_qubits``, the memory budget, or the point
    where one input, predicted from the last reading (x 2 per qubit x gate ratio), would exceed the time budget."""
    meter, no_counter = counter_meter(device)
    readings: list[Reading] = []
    for q in sorted(widths):
        if q > max_qubits or 2**q * BYTES_PER_AMPLITUDE * MEMORY_FACTOR > memory_budget_bytes:
            break
        if readings:
            last = readings[-1]
            one_input = (
                last.wall_s
                / last.inferences
                * 2 ** (q - last.qubits)
                * family_circuit(config, q).circuit.size()
                / last.gates
            )
            if one_input > time_budget_s:
                break
        if on_width is not None:
            on_width(device, q)
        readings.append(
            measure_width(
                config,
                q,
                samples=samples,
                device=device,
                time_budget_s=time_budget_s,
                memory_budget_bytes=memory_budget_bytes,
                weights=weights,
                meter=meter,
                no_counter=no_counter,
            )
        )
    return readings


def available_memory_bytes(device: str = "cpu") -> int:
    """Memory free for statevectors now: the GPU's free memory for "cuda"; psutil's figure (else 2 GiB) for "cpu"."""
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with the dependencies
        return 2 * 1024**3
