"""``couple(a, b) -> OUT [mode = M, weights = W, blocks = paths]``: its paths, output irreps and the diagnostics that
explain a couple with no path (the closest miss, and what the inputs do reach)."""

from __future__ import annotations

from collections.abc import Mapping

from fdg import ir
from fdg.checker import rules
from fdg.checker.evaluate import MAX_L, MAX_MUL, Number, integer, irreps, suggest
from fdg.checker.vertices import (
    Call,
    Made,
    Resolve,
    check_cg_work,
    check_size,
    feature,
    same_axis,
    warn_unreached,
    weights_option,
    word,
)
from fdg.errors import Diagnostic, FdgTypeError
from fdg.frontend import syntax
from fdg.runtime import Irreps


def couple(call: Call, resolve: Resolve, env: Mapping[str, Number], warnings: list[Diagnostic]) -> Made:
    a_arg, b_arg = call.positional
    a = feature(resolve(a_arg.value), a_arg.span, "the first input of couple")
    b = feature(resolve(b_arg.value), b_arg.span, "the second input of couple")
    assert isinstance(a.type, ir.Feature) and isinstance(b.type, ir.Feature)
    axis = a.type.axis
    same_axis(axis, b, b_arg.span, "the second input")
    mode = _mode(call)
    weights, extra = weights_option(call, resolve, axis, ("learned", "none", "input", "per_index"))
    weighted = weights.kind != "none"
    if mode == "uvw" and not weighted:
        raise FdgTypeError(
            "mode uvw needs weights: without them it would sum every channel pair",
            call.options["weights"].span,
            "use weights = learned, or mode = uvuv for the plain outer product",
        )
    assert call.target is not None
    per_path = "blocks" in call.options and word(call, "blocks", ("irreps", "paths")) == "paths"
    if per_path:
        out, paths = _per_path(call, a.type.irreps, b.type.irreps, env, mode, weighted)
    else:
        out = (
            _lmax_out(call, a.type.irreps, b.type.irreps, env, mode, weighted)
            if isinstance(call.target, syntax.Lmax)
            else irreps(call.target, env)
        )
        paths = rules.couple_paths(a.type.irreps, b.type.irreps, out, mode, weighted)
        if not paths:
            raise _no_path(a.type.irreps, b.type.irreps, out, mode, weighted, call)
        reach = _reaches(a.type.irreps, b.type.irreps, mode, weighted)
        warn_unreached(out, {p.i_out for p in paths}, "couple", call, warnings, reach)
    if weights.kind == "input" and "mode" not in call.options:
        warnings.append(_uvw_by_default(a.type.irreps, b.type.irreps, out, paths, call))
    check_cg_work({(a.type.irreps[p.i1].ir.l, b.type.irreps[p.i2].ir.l, out[p.i_out].ir.l) for p in paths}, call)
    weights = ir.Weights(weights.kind, rules.couple_numel(paths), weights.count, weights.source)
    check_size(weights, call, extra)
    op = ir.Couple(mode, weights, out, paths, call.span, per_path)
    operands = (a, b) if extra is None else (a, b, extra)
    return Made(op, ir.Feature(axis, out), operands)


def _per_path(
    call: Call, a: Irreps, b: Irreps, env: Mapping[str, Number], mode: str, weighted: bool
) -> tuple[Irreps, tuple[ir.CouplePath, ...]]:
    """``[blocks = paths]``: one output block per path (:func:`rules.per_path`), among the irreps of the target
    (``-> lmax L``: every irrep up to ``L``; irreps: those irreps, whatever their multiplicities)."""
    assert call.target is not None
    if rules.mode_multiplicity(mode, 1, 1, weighted) is None:
        raise FdgTypeError(
            f"blocks = paths needs a mode that fixes each block's multiplicity, not {mode}",
            call.options["blocks"].span,
            "use mode = uvu (NequIP's and MACE's convolutions), uvv, uuu or uvuv",
        )
    if isinstance(call.target, syntax.Lmax):
        lmax = integer(call.target.value, env, "lmax", 0, MAX_L)
        out, paths = rules.per_path(a, b, lambda ir_: ir_.l <= lmax, mode, weighted)
    else:
        wanted = {ir_ for _, ir_ in irreps(call.target, env)}
        out, paths = rules.per_path(a, b, wanted.__contains__, mode, weighted)
    if not paths:
        raise FdgTypeError(
            f"no path of mode {mode} reaches the irreps asked for", call.target.span, _reaches(a, b, mode, weighted)
        )
    return out, paths


def _reaches(a: Irreps, b: Irreps, mode: str, weighted: bool) -> str | None:
    """``with mode uvu, 8x0e x 1o reaches 8x1o``: every irrep some path of the mode reaches (None where the mode
    gives no one multiplicity per irrep)."""
    found = rules.reachable(a, b, MAX_L, mode, weighted)
    return None if isinstance(found, str) or not len(found) else f"with mode {mode}, ({a}) x ({b}) reaches {found}"


def _uvw_by_default(a: Irreps, b: Irreps, out: Irreps, paths: tuple[ir.CouplePath, ...], call: Call) -> Diagnostic:
    """The warning of a couple with external weights and no mode: it is uvw, every channel pair weighed."""
    uvu = rules.couple_paths(a, b, out, "uvu", True)
    fewer = (
        f"; with mode = uvu (one weight per path and channel) it would take {rules.couple_numel(uvu)}" if uvu else ""
    )
    numel = rules.couple_numel(paths)
    return Diagnostic(
        "warning",
        f"this couple has external weights and no mode, so it is uvw: {numel} weights per row{fewer}",
        call.options["weights"].span,
        "write the mode: [mode = uvw] keeps every channel pair, [mode = uvu] is NequIP's and MACE's convolution",
    )


def _mode(call: Call) -> str:
    """The mode option of a couple (``uvw`` where it has none), checked."""
    if "mode" not in call.options:
        return "uvw"
    word = call.options["mode"].value
    spelled = word.id if isinstance(word, syntax.Name) else None
    if spelled not in rules.MODE_ALIASES:
        modes = f"modes: {', '.join(rules.MODE_ALIASES)}"
        if spelled is None:
            raise FdgTypeError("a mode is one of the mode words", word.span, modes)
        raise FdgTypeError(f"unknown mode '{spelled}'", word.span, suggest(spelled, list(rules.MODE_ALIASES)) or modes)
    return rules.MODE_ALIASES[spelled]


def _lmax_out(call: Call, a: Irreps, b: Irreps, env: Mapping[str, Number], mode: str, weighted: bool) -> Irreps:
    """The output irreps of ``couple(a, b) -> lmax = L``: every irrep up to ``L`` a path reaches."""
    assert isinstance(call.target, syntax.Lmax)
    lmax = integer(call.target.value, env, "lmax", 0, MAX_L)
    found = rules.reachable(a, b, lmax, mode, weighted)
    if isinstance(found, str):
        raise FdgTypeError(
            f"cannot choose output multiplicities for mode {mode}: {found}",
            call.target.span,
            "write the output irreps explicitly",
        )
    if len(found) == 0:
        paired = mode not in ("uuu", "uuw") or any(m1 == m2 for m1, _ in a for m2, _ in b)
        lowest = min(abs(ir1.l - ir2.l) for _, ir1 in a for _, ir2 in b)
        raise FdgTypeError(
            f"no path of mode {mode} reaches an irrep with l <= {lmax}",
            call.target.span,
            f"{a} x {b} reaches degrees {lowest} and up"
            if paired
            else f"mode {mode} pairs channels one to one, but the inputs' multiplicities differ",
        )
    if any(mul > MAX_MUL for mul, _ in found):
        raise FdgTypeError(
            f"the output multiplicities {found} are too large (at most {MAX_MUL})",
            call.target.span,
            "write the output irreps explicitly",
        )
    return found


def _no_path(a: Irreps, b: Irreps, out: Irreps, mode: str, weighted: bool, call: Call) -> FdgTypeError:
    """The most telling reason why no path exists: a multiplicity or parity miss before a triangle miss."""
    rank = {"multiplicity": 0, "parity": 1, "triangle": 2}
    best: tuple[int, str, str | None] | None = None
    for mul1, ir1 in a:
        for mul2, ir2 in b:
            for mul_out, ir_out in out:
                why = rules.reject(mode, mul1, ir1, mul2, ir2, mul_out, ir_out, weighted)
                assert why is not None
                hint = rules.parity_hint(ir1, ir2, ir_out) if why.reason == "parity" else why.detail
                message = f"{ir1} x {ir2} cannot produce {ir_out} with mode {mode}: {why.reason}"
                if best is None or rank[why.reason] < best[0]:
                    best = (rank[why.reason], message, hint)
    assert call.target is not None
    if best is None:
        return FdgTypeError("this couple has an empty input or output", call.target.span)
    reach = _reaches(a, b, mode, weighted)
    return FdgTypeError(best[1], call.target.span, "; ".join(h for h in (best[2], reach) if h) or None)
