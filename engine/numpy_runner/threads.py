"""How many BLAS threads the numpy runner uses, and on which CPUs it runs.

numpy's matrix products run in the BLAS library's thread pool (OpenBLAS, MKL, ...), which
threadpoolctl can resize at run time. `threads = 0` means one BLAS thread: OpenBLAS
workers spin-wait for each other, and when the cores are shared — with speech
recognition and synthesis in this application, or with other programs — a two-thread
product was measured 20x slower than a one-thread one on a busy 2-core machine, while
on an idle machine the second thread gains little for matrices this small. A
configured thread count applies to prompt batches and decoding alike. Pinning
(`cpu_affinity`, e.g. the big cores of a big.LITTLE CPU) applies to the generating
thread for the duration of a call (`engine.cpu.pinned`, applied by the token loop).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

import numpy  # noqa: F401 - loads the BLAS library whose threads are managed here
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)

@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools (inspected once: that takes milliseconds)."""
    return ThreadpoolController()


class ComputeThreads:
    """BLAS thread settings of one engine: `threads` (0 = automatic)."""

    def __init__(self, threads: int = 0) -> None:
        self.prompt_threads = threads or 1
        self.decode_threads = threads or 1

    @contextlib.contextmanager
    def blas(self, threads: int) -> Iterator[None]:
        """Limit BLAS to `threads` threads for the body."""
        with _blas().limit(limits=threads, user_api="blas"):
            yield

    def prompt(self) -> contextlib.AbstractContextManager[None]:
        return self.blas(self.prompt_threads)

    def decode(self) -> contextlib.AbstractContextManager[None]:
        return self.blas(self.decode_threads)
