"""What ``check`` admits compiles in bounded time: the largest couple and power under the checker's limits.

The limits (``MAX_CG_WORK``, ``MAX_POWER_BASIS_WORK``) are set where compiling takes about half a minute on two cores;
just past them the checker refuses with a located message (goldens: ``errors/check/*_too_large``). The time limits
here are generous, for shared CI machines: they catch a construction that stops scaling, not a slow machine.
"""

from __future__ import annotations

import time

import torch
from module_inputs import random_inputs

import fdg
from fdg.checker.manybody import MAX_POWER_BASIS_WORK
from fdg.checker.vertices import MAX_CG_WORK


def _compiled_within(source: str, seconds: float) -> fdg.FdgModule:
    start = time.perf_counter()
    module = fdg.compile(source)
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"compiling took {elapsed:.0f} s"
    return module


def test_the_largest_admitted_coupling_compiles() -> None:
    """Every path of sh(16) x sh(16) -> lmax 16: 995 537 of the 10^6 coefficients allowed; about 30 s measured."""
    assert MAX_CG_WORK == 10**6
    module = _compiled_within(
        """diagram HighDegree() {
    input a   : sh(16) over edge
    input vec : 1o over edge
    output y = couple(a, sh(vec, 16)) -> lmax 16
}""",
        240,
    )
    out = module(**random_inputs(module, torch.float32))
    # 0e, then both parities of every l from 1 to 16
    assert out.shape[1] == 1 + 2 * sum(2 * l + 1 for l in range(1, 17)) and torch.isfinite(out).all()


def test_a_power_of_order_8_compiles() -> None:
    """Order 8 over 0e + 1o + 2e: 12 870 monomials, 0.16 of the basis work allowed; about 15 s measured (was over
    14 minutes before the bases were screened at sample points)."""
    assert MAX_POWER_BASIS_WORK == 5 * 10**9
    module = _compiled_within(
        """diagram Order8(mul = 2) {
    input x : mul x (0e + 1o + 2e) over node
    output y = power(x, 8) -> mul x (0e + 1o + 2e)
}""",
        180,
    )
    out = module(**random_inputs(module, torch.float32))
    assert out.shape[1] == 2 * 9 and torch.isfinite(out).all()
