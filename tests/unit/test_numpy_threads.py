"""engine.numpy_runner.threads: BLAS thread limits; engine.cpu.pinned: CPU pinning, applied
and undone."""

from __future__ import annotations

import os

import pytest
from threadpoolctl import threadpool_info

from engine.cpu import pinned
from engine.numpy_runner.threads import ComputeThreads


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_defaults_to_one_thread_and_configured_counts_apply() -> None:
    assert ComputeThreads().prompt_threads == ComputeThreads().decode_threads == 1
    threads = ComputeThreads(threads=3)
    assert threads.prompt_threads == threads.decode_threads == 3
    before = _blas_threads()
    with ComputeThreads(threads=1).decode():
        assert _blas_threads() == {1}
    assert _blas_threads() == before


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_pinning_is_applied_and_restored() -> None:
    allowed = os.sched_getaffinity(0)
    first = min(allowed)
    with pinned((first,)):
        assert os.sched_getaffinity(0) == {first}
    assert os.sched_getaffinity(0) == allowed
    with pinned(()):  # no affinity configured: nothing changes
        assert os.sched_getaffinity(0) == allowed
