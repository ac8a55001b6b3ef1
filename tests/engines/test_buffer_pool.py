"""Buffer sets kept between calls (``buffer_pool.py``)."""

from __future__ import annotations

import torch

from qsetfit.engines.torch.buffer_pool import BufferPool


def _set() -> list[torch.Tensor]:
    return [torch.empty(4), torch.empty(2, 3)]


def test_a_kept_set_is_handed_out_once_and_only_for_its_shapes():
    pool = BufferPool()
    made: list[list[torch.Tensor]] = []

    def make() -> list[torch.Tensor]:
        made.append(_set())
        return made[-1]

    first, second = pool.take("a", make), pool.take("a", make)
    assert len(made) == 2 and first is not second  # nothing kept yet: both made
    pool.give("a", [first, second])
    assert {id(pool.take("a", make)), id(pool.take("a", make))} == {id(first), id(second)}  # each once
    assert len(made) == 2
    pool.give("a", [first])
    assert pool.take("b", make) is made[-1] and len(made) == 3  # other shapes: a fresh set
    pool.give("b", [made[-1]])  # the "a" set is dropped for the new shapes
    assert pool.take("a", make) is made[-1] and len(made) == 4


def test_at_most_keep_sets_are_kept():
    pool = BufferPool()
    sets = [_set() for _ in range(BufferPool.KEEP + 2)]
    pool.give("a", sets)
    taken = [pool.take("a", _set) for _ in range(BufferPool.KEEP + 2)]
    assert sum(any(t is s for s in sets) for t in taken) == BufferPool.KEEP
