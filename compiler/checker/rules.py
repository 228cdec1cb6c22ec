"""Coupling rules: which CG paths a vertex has, their weight shapes, and e3nn's normalization.

A ``couple`` vertex's paths are enumerated exactly like e3nn's ``FullyConnectedTensorProduct``::

    for i1 in a: for i2 in b: for i_out in out: if allowed(i1, i2, i_out, mode)

where *allowed* is the triangle rule, the parity rule and the mode's multiplicity rule (``uvu``
keeps the first input's channels, so ``out.mul == a.mul`` ...).  Normalization is e3nn's
``irrep_normalization='component'``, ``path_normalization='element'``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from fdg.ir import CouplePath, LinearPath
from fdg.runtime import Irrep, Irreps

#: canonical mode -> accepted spellings
MODES: dict[str, tuple[str, ...]] = {
    "uvw": ("uvw", "full"),
    "uvu": ("uvu", "channelwise"),
    "uuu": ("uuu", "elementwise"),
    "uvv": ("uvv",),
    "uuw": ("uuw",),
    "uvuv": ("uvuv", "outer"),
}
MODE_ALIASES = {alias: mode for mode, aliases in MODES.items() for alias in aliases}


@dataclass(frozen=True)
class Rejection:
    """Why a requested output irrep is reached by no path of a pair of input irreps."""

    reason: str  # "triangle" | "parity" | "multiplicity"
    detail: str


def mode_multiplicity(mode: str, mul1: int, mul2: int, weighted: bool) -> int | None:
    """The output multiplicity a path of this mode produces, or None where it is free (uvw, weighted uuw)."""
    if mode == "uvu":
        return mul1
    if mode == "uvv":
        return mul2
    if mode == "uvuv":
        return mul1 * mul2
    if mode == "uuu":
        return mul1
    if mode == "uuw" and not weighted:
        return 1  # e3nn: an unweighted uuw sums over u
    return None


def reject(
    mode: str, mul1: int, ir1: Irrep, mul2: int, ir2: Irrep, mul_out: int, ir_out: Irrep, weighted: bool
) -> Rejection | None:
    """None when ``mul1 x ir1 (x) mul2 x ir2 -> mul_out x ir_out`` is a path of ``mode``, else why not."""
    if not abs(ir1.l - ir2.l) <= ir_out.l <= ir1.l + ir2.l:
        low, high = abs(ir1.l - ir2.l), ir1.l + ir2.l
        return Rejection("triangle", f"{ir1} x {ir2} only reaches l = {low}" + (f"..{high}" if high > low else ""))
    if ir1.p * ir2.p != ir_out.p:
        return Rejection("parity", f"{ir1} x {ir2} has parity {'e' if ir1.p * ir2.p == 1 else 'o'}")
    if mode in ("uuw", "uuu") and mul1 != mul2:
        return Rejection("multiplicity", f"mode {mode} pairs channels one to one, but {mul1} != {mul2}")
    want = mode_multiplicity(mode, mul1, mul2, weighted)
    if want is not None and want != mul_out:
        return Rejection("multiplicity", f"mode {mode} produces {want}x{ir_out}, not {mul_out}x{ir_out}")
    return None


def path_shape(mode: str, mul1: int, mul2: int, mul_out: int) -> tuple[int, ...]:
    """Shape of one path's weights, laid out exactly like e3nn's ``TensorProduct.weight``."""
    return {
        "uvw": (mul1, mul2, mul_out),
        "uvu": (mul1, mul2),
        "uvv": (mul1, mul2),
        "uuw": (mul1, mul_out),
        "uuu": (mul1,),
        "uvuv": (mul1, mul2),
    }[mode]


def _fan_in(mode: str, mul1: int, mul2: int) -> int:
    """Number of products summed into one output component (e3nn's ``num_elements``)."""
    return {"uvw": mul1 * mul2, "uvu": mul2, "uvv": mul1, "uuw": mul1, "uuu": 1, "uvuv": 1}[mode]


def couple_paths(a: Irreps, b: Irreps, out: Irreps, mode: str, weighted: bool) -> tuple[CouplePath, ...]:
    """Every allowed path of ``a (x) b -> out`` in e3nn's instruction order, with its normalization."""
    found = [
        (i1, i2, i_out)
        for i1, (mul1, ir1) in enumerate(a)
        for i2, (mul2, ir2) in enumerate(b)
        for i_out, (mul_out, ir_out) in enumerate(out)
        if reject(mode, mul1, ir1, mul2, ir2, mul_out, ir_out, weighted) is None
    ]
    fan_in = {i_out: 0 for _, _, i_out in found}
    for i1, i2, i_out in found:
        fan_in[i_out] += _fan_in(mode, a[i1].mul, b[i2].mul)
    paths = []
    for i1, i2, i_out in found:
        alpha = out[i_out].ir.dim / fan_in[i_out] if fan_in[i_out] > 0 else out[i_out].ir.dim
        shape = path_shape(mode, a[i1].mul, b[i2].mul, out[i_out].mul) if weighted else ()
        paths.append(CouplePath(i1, i2, i_out, shape, math.sqrt(alpha)))
    return tuple(paths)


def per_path(
    a: Irreps, b: Irreps, allowed: Callable[[Irrep], bool], mode: str, weighted: bool
) -> tuple[Irreps, tuple[CouplePath, ...]]:
    """A couple that keeps one output block per path: for every ``(i1, i2)`` and every irrep of ``ir1 x ir2`` that
    ``allowed`` admits, in e3nn's instruction order (NequIP's and MACE's ``irreps_mid``), a block of the mode's
    multiplicity, and path ``k`` into block ``k``, normalized as e3nn normalizes an instruction alone in its output
    block.  The mode must fix that multiplicity (not ``uvw``, nor a weighted ``uuw``)."""
    blocks: list[tuple[int, Irrep]] = []
    paths = []
    for i1, (mul1, ir1) in enumerate(a):
        for i2, (mul2, ir2) in enumerate(b):
            if mode in ("uuw", "uuu") and mul1 != mul2:
                continue
            mul = mode_multiplicity(mode, mul1, mul2, weighted)
            assert mul is not None, f"mode {mode} leaves the output multiplicity free"
            for ir in ir1 * ir2:
                if allowed(ir):
                    fan_in = _fan_in(mode, mul1, mul2)
                    shape = path_shape(mode, mul1, mul2, mul) if weighted else ()
                    paths.append(CouplePath(i1, i2, len(blocks), shape, math.sqrt(ir.dim / fan_in)))
                    blocks.append((mul, ir))
    return Irreps(blocks), tuple(paths)


def sort_order(irreps: Irreps) -> tuple[int, ...]:
    """The blocks of ``irreps`` in the order of e3nn's ``Irreps.sort()``: by degree, odd before even, ties kept in
    their order (block ``k`` of the sorted irreps is block ``order[k]``)."""
    return tuple(sorted(range(len(irreps)), key=lambda k: (irreps[k].ir.l, irreps[k].ir.p, k)))


def reachable(a: Irreps, b: Irreps, lmax: int, mode: str, weighted: bool) -> Irreps | str:
    """Output irreps for ``-> lmax L``: each reachable irrep with l <= L once, sorted like e3nn.

    The multiplicity is the one the mode gives (``uvu``: a's, ``uvv``: b's, ``uvuv``: the product,
    ``uvw``/``uuw``/``uuu``: a's).  Returns a message instead when that multiplicity is ambiguous.
    """
    muls: dict[Irrep, set[int]] = {}
    for mul1, ir1 in a:
        for mul2, ir2 in b:
            if mode in ("uuw", "uuu") and mul1 != mul2:
                continue
            want = mode_multiplicity(mode, mul1, mul2, weighted)
            for ir in ir1 * ir2:
                if ir.l <= lmax:
                    muls.setdefault(ir, set()).add(mul1 if want is None else want)
    for ir, options in muls.items():
        if len(options) > 1:
            return f"the paths reaching {ir} give multiplicities {sorted(options)}"
    return Irreps([(next(iter(muls[ir])), ir) for ir in sorted(muls)])


def parity_hint(ir1: Irrep, ir2: Irrep, ir_out: Irrep) -> str | None:
    """``did you mean 1e?`` when flipping the parity of ``ir_out`` makes it reachable."""
    flipped = Irrep(ir_out.l, -ir_out.p)
    return f"did you mean {flipped}?" if flipped in ir1 * ir2 else None


def linear_paths(irreps_in: Irreps, irreps_out: Irreps) -> tuple[LinearPath, ...]:
    """e3nn ``o3.Linear`` instructions: every (i_in, i_out) with equal irreps; alpha = 1/sqrt(fan-in)."""
    found = [
        (i_in, i_out)
        for i_in, (_, ir_in) in enumerate(irreps_in)
        for i_out, (_, ir_out) in enumerate(irreps_out)
        if ir_in == ir_out
    ]
    fan_in = {i_out: 0 for _, i_out in found}
    for i_in, i_out in found:
        fan_in[i_out] += irreps_in[i_in].mul
    return tuple(LinearPath(i_in, i_out, 1 / math.sqrt(fan_in[i_out])) for i_in, i_out in found)


def couple_numel(paths: tuple[CouplePath, ...]) -> int:
    return sum(math.prod(p.shape) for p in paths)


def linear_numel(irreps_in: Irreps, irreps_out: Irreps, paths: tuple[LinearPath, ...]) -> int:
    return sum(irreps_in[p.i_in].mul * irreps_out[p.i_out].mul for p in paths)
