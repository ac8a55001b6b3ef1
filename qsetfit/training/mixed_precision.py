"""Mixed precision for body tuning on the CPU: the body's forward in bfloat16, weights and optimizer in float32.

setfit's own ``use_amp`` sets the transformers Trainer's ``fp16`` flag after the Trainer (and its accelerator)
exist, so on a CPU it changes nothing. Instead, while phase 1 runs, the body's ``forward`` is wrapped in
``torch.autocast("cpu", bfloat16)`` and its outputs are cast back to float32 (accelerate's ``convert_to_fp32``),
which is what accelerate's mixed precision does to a prepared model; the backward pass and the AdamW step stay
outside autocast, and the wrapper is removed afterwards, so embeddings computed later are plain float32.

Only worth it where the CPU multiplies bfloat16 natively (AMX or AVX512-BF16): there the matrix products of a
MiniLM step run ~1.5x faster; elsewhere bfloat16 is emulated and slower, so "auto" keeps float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from qsetfit.errors import QSetFitError

PRECISIONS = ("auto", "float32", "bfloat16")


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own probes (private API)
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str) -> str:
    """ "float32" or "bfloat16" for a requested precision ("auto": bfloat16 where it is native)."""
    if precision not in PRECISIONS:
        raise QSetFitError(f"body precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


@contextmanager
def autocast_forward(module: torch.nn.Module, precision: str) -> Iterator[None]:
    """Within the block, ``module``'s forward runs under bfloat16 autocast (if ``precision`` resolves to it).

    Outputs come back in float32, so losses and their backward pass see float32 tensors.
    """
    if resolve_precision(precision) != "bfloat16":
        yield
        return
    from accelerate.utils import convert_to_fp32  # what accelerate's own mixed precision casts outputs with

    plain = module.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = plain(*args, **kwargs)
        return convert_to_fp32(out)

    module.forward = forward
    try:
        yield
    finally:
        del module.forward  # back to the class's forward
