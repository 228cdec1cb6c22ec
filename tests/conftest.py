"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def float64_default() -> Iterator[None]:
    """float64 as torch's default dtype for one test (restored after): equivariance and parity are checked to 1e-10,
    and e3nn builds its generators, 3j tables and D matrices in the default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for one test (restored after): tiny models on a busy 2-core box ran 100x slower with a second
    thread (measured in tests/test_training.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
