"""Single-threaded torch ops over Python threads (``engines/torch/threads.py``)."""

from __future__ import annotations

import threading

import pytest
import torch

from qsetfit.engines.torch.threads import map_in_threads, one_thread


def test_one_thread_restores_the_callers_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread() as threads:
            assert threads == 2 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_map_in_threads_keeps_order_and_builds_each_threads_state_once(threads):
    made, lock = [], threading.Lock()

    def setup() -> dict:
        with lock:
            made.append(threading.get_ident())
        return {"thread": threading.get_ident()}

    def work(item: int, state: dict) -> tuple[int, int, int, bool]:
        assert state["thread"] == threading.get_ident()  # this thread's own state
        x = torch.full((4,), float(item), requires_grad=True)
        with torch.no_grad():
            y = x * 2
        return item, int(y.sum()), torch.get_num_threads(), y.requires_grad

    items = list(range(7))
    out = map_in_threads(work, items, threads, setup)
    assert [o[:2] for o in out] == [(i, 8 * i) for i in items]  # input order, every item once
    assert all(o[2] == 1 and not o[3] for o in out)  # single-threaded ops; no_grad set inside the worker
    assert len(made) == len(set(made)) <= threads  # one state per thread
