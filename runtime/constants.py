"""A cache for the constant tensors fdg builds (CG tables, recursion matrices, bases), safe under tracing.

``torch.export`` and ``torch.compile`` run a module's code with fake tensors.  A table first built during that run
would be a fake tensor, and a plain ``functools.cache`` would hand that fake to every later call, in every module
(an eager call then returns a ``FakeTensor``).  :func:`constant` builds outside any fake mode, so what is cached is
always a real tensor; a traced graph embeds it as a constant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from torch._subclasses.fake_tensor import unset_fake_temporarily

P = ParamSpec("P")
R = TypeVar("R")


def constant(fn: Callable[P, R]) -> Callable[P, R]:
    """``functools.cache`` for a builder of constant tensors, run outside any fake tensor mode (on a miss only: a
    hit, the common case inside ``forward``, costs what a plain cache costs)."""

    @functools.wraps(fn)
    def outside_fake(*args: P.args, **kwargs: P.kwargs) -> R:
        with unset_fake_temporarily():
            return fn(*args, **kwargs)

    return functools.cache(outside_fake)  # type: ignore[return-value]
