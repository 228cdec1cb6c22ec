"""Typing rules of the many-body vertices ``fuse`` and ``power``.

Same contract as ``vertices.py``: a rule takes the call and a ``resolve`` callback and returns a
:class:`~fdg.checker.vertices.Made`; it never touches the graph.
"""

from __future__ import annotations

from collections.abc import Mapping

from fdg import ir
from fdg.checker.evaluate import MAX_L, Number, integer, irreps, suggest
from fdg.checker.vertices import (
    Call,
    Made,
    Resolve,
    Wire,
    check_cg_work,
    check_size,
    feature,
    same_axis,
    warn_unreached,
    weights_option,
)
from fdg.errors import Diagnostic, FdgTypeError, Span
from fdg.frontend import syntax
from fdg.planning.fuse import trees
from fdg.runtime.characters import monomial_count, symmetric_power_decomposition, symmetric_power_multiplicity
from fdg.runtime.fusion_paths import FuseSpec, Tree, fuse_layout
from fdg.runtime.irreps import Irrep, Irreps


def _uniform_mul(w: Wire, span: Span, what: str) -> int:
    assert isinstance(w.type, ir.Feature)
    muls = {mul for mul, _ in w.type.irreps}
    if len(muls) != 1:
        raise FdgTypeError(f"{what} must have one multiplicity for all its irreps, but has {w.type.irreps}", span)
    return muls.pop()


def _products(parts: list[Irreps]) -> set[Irrep]:
    """Every irrep reachable by coupling one irrep of each part in turn."""
    reach = {ir for _, ir in parts[0]}
    for part in parts[1:]:
        reach = {out for ir1 in reach for _, ir2 in part for out in ir1 * ir2}
        reach = {ir for ir in reach if ir.l <= 2 * MAX_L}
    return reach


def _many_body_out(call: Call, env: Mapping[str, Number], mul: int, reach: set[Irrep]) -> Irreps:
    assert isinstance(call.target, syntax.IrrepsSum | syntax.Lmax)
    if isinstance(call.target, syntax.Lmax):
        raise FdgTypeError(f"{call.name} needs explicit output irreps", call.target.span)
    out = irreps(call.target, env)
    for mul_out, ir_out in out:
        if mul_out != mul:
            raise FdgTypeError(
                f"{call.name} keeps the channels of its inputs: expected {mul}x{ir_out}, got {mul_out}x{ir_out}",
                call.target.span,
            )
        if ir_out not in reach:
            raise FdgTypeError(
                f"{call.name} cannot produce {ir_out} from these inputs",
                call.target.span,
                f"reachable: {' + '.join(str(ir) for ir in sorted(reach))}",
            )
    return out


def fuse(call: Call, resolve: Resolve, env: Mapping[str, Number], warnings: list[Diagnostic]) -> Made:
    wires = [feature(resolve(a.value), a.span, "an input of fuse") for a in call.positional]
    assert isinstance(wires[0].type, ir.Feature)
    axis = wires[0].type.axis
    muls = []
    for w, arg in zip(wires, call.positional, strict=True):
        same_axis(axis, w, arg.span, "this input")
        muls.append(_uniform_mul(w, arg.span, "each input of fuse"))
    shared = {m for m in muls if m != 1}
    if len(shared) > 1:
        raise FdgTypeError(f"the inputs of fuse must share a multiplicity (or have 1), got {muls}", call.span)
    mul = shared.pop() if shared else 1
    parts = [w.type.irreps for w in wires if isinstance(w.type, ir.Feature)]
    if isinstance(call.target, syntax.Lmax):  # every reachable irrep up to that degree, once, sorted like e3nn
        top = integer(call.target.value, env, "lmax", 0, MAX_L)
        kept = sorted(ir for ir in _products(parts) if ir.l <= top)
        if not kept:
            lowest = min(ir.l for ir in _products(parts))
            raise FdgTypeError(
                f"no path of fuse reaches an irrep with l <= {top}", call.target.span, f"the lowest is l = {lowest}"
            )
        out = Irreps([(mul, ir) for ir in kept])
    else:
        out = _many_body_out(call, env, mul, _products(parts))
    weights, extra = weights_option(call, resolve, axis, ("learned", "none", "input", "per_index"))
    text, basis = _tree(call) if "tree" in call.options else (None, trees.left_to_right(len(wires)))
    lmax = None
    if "lmax" in call.options:
        lmax = integer(call.options["lmax"].value, env, "the lmax of fuse", 0, MAX_L)
    try:
        layout = fuse_layout(FuseSpec.of(parts, out, basis, lmax))
    except ValueError as too_large:  # fuse_layout's guards on the size of a node and the number of paths
        raise FdgTypeError(
            str(too_large), call.span, "cap the degrees at internal nodes with lmax = L, or use fewer or smaller inputs"
        ) from None
    if not layout.paths:
        assert lmax is not None  # without a cap, every output irrep is reachable (checked above)
        raise FdgTypeError(
            f"lmax = {lmax} leaves this fuse without a path to {out}",
            call.options["lmax"].span,
            f"it drops {' + '.join(map(str, layout.dropped))} at the internal nodes of the tree; raise lmax",
        )
    warn_unreached(out, {p.i_out for p in layout.paths}, "fuse", call, warnings)
    check_cg_work(layout.degree_triples(), call)
    numel = 0 if weights.kind == "none" else len(layout.paths) * mul
    weights = ir.Weights(weights.kind, numel, weights.count, weights.source)
    check_size(weights, call, extra)
    labels = tuple(_label(a.span, k) for k, a in enumerate(call.positional))
    op = ir.Fuse(weights, out, text, basis, lmax, labels, call.span)
    return Made(op, ir.Feature(axis, out), (*wires, extra) if extra else tuple(wires))


def _label(span: Span, k: int) -> str:
    """An input as written (``h[src]``), or its position when it spans several lines."""
    if span.line != span.end_line:
        return f"#{k}"
    return span.source.line(span.line)[span.column - 1 : span.end_column]


def _tree(call: Call) -> tuple[str, Tree]:
    """Validate ``tree = ((a, b), c)``: a binary tree over the inputs' names, each used once."""
    names = [a.value.id for a in call.positional if isinstance(a.value, syntax.Name)]
    if len(names) != len(call.positional) or len(set(names)) != len(names):
        raise FdgTypeError(
            "tree = ... needs the inputs of fuse to be distinct names",
            call.options["tree"].span,
            "name each input (h2 = h[src]) or leave tree out: every tree spans the same maps",
        )
    seen: list[str] = []

    def walk(node: syntax.Expr) -> tuple[str, Tree]:
        if isinstance(node, syntax.Name) and node.id in names:
            seen.append(node.id)
            return node.id, names.index(node.id)
        if isinstance(node, syntax.Tuple) and len(node.items) == 2:
            (a, ta), (b, tb) = walk(node.items[0]), walk(node.items[1])
            return f"({a}, {b})", (ta, tb)
        if isinstance(node, syntax.Name):
            raise FdgTypeError(
                f"'{node.id}' is not an input of this fuse",
                node.span,
                suggest(node.id, names) or f"its inputs: {', '.join(names)}",
            )
        raise FdgTypeError("a tree is a nested pair of the inputs' names, like ((a, b), c)", node.span)

    found = walk(call.options["tree"].value)
    if sorted(seen) != sorted(names):
        raise FdgTypeError(
            f"the tree must use each input of fuse once: {', '.join(names)}", call.options["tree"].value.span
        )
    return found


#: most monomials of degree nu in one channel's components: the size over which power builds its basis
MAX_POWER_MONOMIALS = 20000
#: most work to orthonormalize power's bases, sum over orders k and output irreps L of K^2 (2L+1) monomials(k), K the
#: number of basis elements: power 8 over 0e + 1o + 2e is 0.8e9 and builds in 10-15 s (benchmarks/compile_time.py
#: --power 8); the slowest admitted case tried in about 25 s (... --power 8 --out "0e + 1o + 2e + 3o + 4e")
MAX_POWER_BASIS_WORK = 5 * 10**9


def power(call: Call, resolve: Resolve, env: Mapping[str, Number]) -> Made:
    """``power(a, nu) -> IRREPS``: every output irrep must occur in a symmetric power of one channel of ``a``."""
    a_arg, nu_arg = call.positional
    a = feature(resolve(a_arg.value), a_arg.span, "the input of power")
    assert isinstance(a.type, ir.Feature)
    mul = _uniform_mul(a, a_arg.span, "the input of power")
    nu = integer(nu_arg.value, env, "the correlation order", 1, 8)
    reach: set[Irrep] = set()
    for order in range(1, nu + 1):
        reach |= _products([a.type.irreps] * order)
    out = _many_body_out(call, env, mul, reach)
    targets = [target for _, target in out]
    repeated = next((t for k, t in enumerate(targets) if t in targets[:k]), None)
    if repeated is not None:
        assert call.target is not None
        raise FdgTypeError(
            f"power's output lists {repeated} twice: {out}",
            call.target.span,
            "each irrep of a power is the whole function space of that degree; list it once (a linear after the power"
            " makes more channels)",
        )
    V = a.type.irreps.channel()
    if monomial_count(V.dim, nu) > MAX_POWER_MONOMIALS:
        raise FdgTypeError(
            f"power of order {nu} over {V.dim} components per channel is too large: its basis is built over "
            f"{monomial_count(V.dim, nu)} monomials (at most {MAX_POWER_MONOMIALS})",
            nu_arg.span,
            "lower nu, or the degrees of the input",
        )
    multiplicity = {
        (k, target): symmetric_power_multiplicity(V, k, target) for k in range(1, nu + 1) for _, target in out
    }
    work = sum(m * m * target.dim * monomial_count(V.dim, k) for (k, target), m in multiplicity.items())
    if work > MAX_POWER_BASIS_WORK:
        raise FdgTypeError(
            f"power of order {nu} over {V} to {out.channel()} is too large: orthonormalizing its basis takes about "
            f"{work:.1e} multiply-adds (at most {MAX_POWER_BASIS_WORK:.0e})",
            nu_arg.span,
            "lower nu, the degrees of the input, or the output irreps",
        )
    counts = {target: sum(m for (_, t), m in multiplicity.items() if t == target) for _, target in out}
    for target, count in counts.items():
        if not count:  # reached by products of different channels' irreps, but not by symmetric ones
            symmetric = {found for k in range(1, nu + 1) for found, _ in symmetric_power_decomposition(V, k)}
            raise FdgTypeError(
                f"power cannot produce {target}: no symmetric product of {V} of order 1..{nu} contains it",
                call.target.span,
                "power multiplies each channel with itself, so antisymmetric couplings (like the cross product of a "
                f"vector with itself) vanish; reachable: {' + '.join(str(found) for found in sorted(symmetric))}",
            )
    weights, extra = weights_option(call, resolve, a.type.axis, ("learned", "per_index", "input"))
    weights = ir.Weights(weights.kind, mul * sum(counts.values()), weights.count, weights.source)
    check_size(weights, call, extra)
    op = ir.Power(nu, weights, out, call.span)
    return Made(op, ir.Feature(a.type.axis, out), (a,) if extra is None else (a, extra))
