"""Running torch on one intra-op thread for a while: what table construction needs on a shared CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch with one intra-op thread inside the block (the count is restored after).

    Building CG-derived tables (symmetric bases, fusion tables) is thousands of tiny tensor operations.  With several
    intra-op threads on a busy machine each one that goes parallel waits for its threads to be scheduled: measured
    8-10x slower on 2 shared cores.

    >>> with single_threaded():
    ...     torch.get_num_threads()
    1
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
