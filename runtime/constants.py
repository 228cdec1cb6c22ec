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
    """``functools.cache`` for a builder of constant tensors, run outside any fake tensor mode."""
    cached = functools.cache(fn)

    @functools.wraps(fn)
    def build(*args: P.args, **kwargs: P.kwargs) -> R:
        with unset_fake_temporarily():
            return cached(*args, **kwargs)  # type: ignore[arg-type]

    return build
