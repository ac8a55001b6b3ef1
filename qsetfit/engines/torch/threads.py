"""Single-threaded torch ops, spread over Python threads: how the torch engines use several CPU cores.

Measured on 2 shared cores: torch's intra-op threads stall 5-50x on the small ops of these engines when the
other core is busy (a 64 x 32 x 32 one-qubit update took 46 ms; the exact module-1 features and module-2
read-outs of 2,048 SST-2 inputs of the 14-qubit head took 23 s with 2 intra-op threads against 7.4 s with one).
Whole pieces of work in Python threads (torch releases the GIL), each with single-threaded ops, do not
synchronise. They still share the GIL between ops: every torch call, even a view, releases and re-takes it, so
small ops in two threads hand it back and forth (measured: 200,000 views took 5x the CPU time in two threads as
in one; the 14-qubit noisy trajectories, ~19 torch calls per trajectory, run ~25% slower per thread with two).
Large ops per call are what make threads scale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


@contextmanager
def one_thread() -> Iterator[int]:
    """Single-threaded torch ops inside; yields the caller's thread count (restored on exit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def map_in_threads(
    fn: Callable[[Item, Any], Result], items: Sequence[Item], threads: int, setup: Callable[[], Any] | None = None
) -> list[Result]:
    """``[fn(item, state) for item in items]``, in order, over up to ``threads`` Python threads.

    Every torch op runs single-threaded. ``setup()`` builds each thread's ``state`` once (e.g. its buffers;
    None without it). Grad mode is per thread: ``fn`` sets it (workers start with autograd on).
    """
    if threads <= 1 or len(items) <= 1:
        with one_thread():
            state = setup() if setup is not None else None
            return [fn(item, state) for item in items]
    local = threading.local()

    def work(item: Item) -> Result:
        if not hasattr(local, "state"):
            torch.set_num_threads(1)  # OpenMP's thread count is per thread: set it in each worker
            local.state = setup() if setup is not None else None
        return fn(item, local.state)

    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(work, items))
