"""Typing rules of the built-in vertices: ``couple``, ``linear``, ``sh``, ``sum``, ``fuse``, ``power``.

Each rule takes the call's syntax and a ``resolve`` callback (which evaluates an argument to a
number or a :class:`Wire`) and returns a :class:`Made`: the vertex payload, the type of the wire
it produces and its operands by port.  The rules never touch the graph; ``lower.py`` does.
Warnings (an output irrep no path reaches, ...) are appended to the list passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from fdg import ir
from fdg.checker import rules
from fdg.checker.activations import FUNCTIONS as ACTIVATIONS
from fdg.checker.evaluate import MAX_L, MAX_WEIGHTS, Number, integer, irreps, suggest
from fdg.errors import Diagnostic, FdgTypeError, Span
from fdg.frontend import syntax
from fdg.runtime import Irrep, Irreps

#: per-row weights read from a feature wire must be invariant channels
EVEN_SCALAR = Irrep(0, 1)


@dataclass(frozen=True)
class Wire:
    """A value of the diagram: the node producing it and its type."""

    node: str
    type: ir.WireType


Value: TypeAlias = Number | Wire
Resolve = Callable[[syntax.Expr], Value]


def what_is(value: Value) -> str:
    """What a value is, in the words of an error message: a number, an index, external weights or features."""
    if not isinstance(value, Wire):
        return "a number"
    if isinstance(value.type, ir.IndexWire):
        return f"an {value.type}"
    if isinstance(value.type, ir.WeightsWire):
        return "external weights"
    return f"a wire of {value.type}"


@dataclass(frozen=True)
class Made:
    op: ir.Vertex
    out: ir.WireType
    operands: tuple[Wire, ...]


@dataclass(frozen=True)
class Call:
    """A built-in call, with its arguments split and its options checked against the allowed names."""

    name: str
    positional: tuple[syntax.Arg, ...]
    keywords: Mapping[str, syntax.Arg]
    options: Mapping[str, syntax.Option]
    target: syntax.IrrepsSum | syntax.Lmax | None
    span: Span


# name -> (number of positional arguments (None: two or more), keyword arguments, options, takes '->')
SIGNATURES: dict[str, tuple[int | None, tuple[str, ...], tuple[str, ...], bool]] = {
    "couple": (2, (), ("mode", "weights", "blocks", "unreached"), True),
    "linear": (1, (), ("weights", "bias", "unreached"), True),
    "sh": (2, (), (), False),
    "sum": (1, ("by",), (), False),
    "fuse": (None, (), ("weights", "tree", "lmax", "unreached"), True),
    "power": (2, (), ("weights",), True),
    "sort": (1, (), (), False),
    "cat": (None, (), (), False),
    "select": (3, (), (), False),
    "channels": (4, (), (), False),
    "gate": (3, (), (), False),
    "norm_activation": (2, (), (), False),
    "length": (1, (), (), False),
    "bessel": (3, (), (), False),
    "cutoff": (3, (), (), False),
    **{name: (1, (), (), False) for name in ACTIVATIONS},
}


def split_call(name: str, call: syntax.Call) -> Call:
    """Check a built-in call's shape (arity, keywords, options, arrow) before typing it."""
    count, keywords, options, arrow = SIGNATURES[name]
    positional = tuple(a for a in call.args if a.name is None)
    given = {a.name: a for a in call.args if a.name is not None}
    if count is None and len(positional) < 2:
        raise FdgTypeError(f"{name} takes two or more inputs, got {len(positional)}", call.span)
    if count is not None and len(positional) != count:
        where = positional[count].span if len(positional) > count else call.span
        raise FdgTypeError(
            f"{name} takes {count} positional argument{'s' * (count > 1)}, got {len(positional)}",
            where,
            f"usage: {USAGE[name]}",
        )
    for key, arg in given.items():
        if key not in keywords:
            raise FdgTypeError(f"{name} has no argument '{key}'", arg.span, f"usage: {USAGE[name]}")
    for key in keywords:
        if key not in given:
            raise FdgTypeError(f"{name} needs the argument '{key} = ...'", call.span, f"usage: {USAGE[name]}")
    if call.arrow is None and arrow:
        raise FdgTypeError(f"{name} needs an output type", call.span, f"usage: {USAGE[name]}")
    if call.arrow is not None and not arrow:
        raise FdgTypeError(
            f"{name} takes no output type: its output is determined by its inputs",
            call.arrow.span,
            f"usage: {USAGE[name]}",
        )
    opts = {o.name: o for o in call.arrow.options} if call.arrow else {}
    for key, opt in opts.items():
        if key not in options:
            valid = ", ".join(options) or "none"
            raise FdgTypeError(
                f"{name} has no option '{key}' (its options: {valid})", opt.span, suggest(key, list(options))
            )
    target = call.arrow.target if call.arrow else None
    return Call(name, positional, given, opts, target, call.span)


USAGE = {
    "couple": "couple(a, b) -> IRREPS [mode = uvu, weights = learned]",
    "linear": "linear(a) -> IRREPS [weights = learned]",
    "sh": "sh(vector, L)",
    "sum": "sum(x, by = index)",
    "fuse": "fuse(a, b, c) -> IRREPS [weights = learned, tree = ((a, b), c), lmax = L]",
    "power": "power(a, nu) -> IRREPS [weights = learned]",
    "sort": "sort(x)",
    **{name: f"{name}(x), x of scalars" for name in ACTIVATIONS},
    "cat": "cat(a, b, ...)",
    "gate": "gate(silu(scalars), sigmoid(gates), gated)",
    "norm_activation": "norm_activation(x, sigmoid)",
    "length": "length(vec)",
    "bessel": "bessel(length(vec), 8, r_max)",
    "cutoff": "cutoff(length(vec), r_max, 6)",
    "select": "select(x, start, stop)",
    "channels": "channels(x, block, start, stop)",
}


def feature(value: Value, span: Span, what: str) -> Wire:
    """The value as a wire of irreps features, or an error saying what it is instead."""
    if isinstance(value, Wire) and isinstance(value.type, ir.Feature):
        return value
    raise FdgTypeError(f"{what} must be a wire of irreps features, but this is {what_is(value)}", span)


def index(value: Value, span: Span, what: str) -> Wire:
    if isinstance(value, Wire) and isinstance(value.type, ir.IndexWire):
        return value
    raise FdgTypeError(f"{what} must be an index input (declared `input i : index A -> B`)", span)


def same_axis(axis: ir.Axis, other: Wire, span: Span, what: str) -> None:
    assert isinstance(other.type, ir.Feature | ir.IndexWire | ir.WeightsWire)
    if other.type.axis != axis:
        raise FdgTypeError(
            f"{what} is over {other.type.axis}, but this vertex is over {axis}",
            span,
            "gather with an index (h[src]) or sum(x, by = i) to move between axes",
        )


def weights_option(
    call: Call, resolve: Resolve, axis: ir.Axis, allowed: tuple[str, ...]
) -> tuple[ir.Weights, Wire | None]:
    """Read ``weights = learned | none | R | learned[z]``; returns the spec (numel filled in later)."""
    opt = call.options.get("weights")
    if opt is None:
        return ir.Weights("learned"), None
    value = opt.value
    takes = f"{call.name} takes weights = {_choices(allowed)}"
    if isinstance(value, syntax.Name) and value.id in ("learned", "none"):
        kind = value.id
        if kind not in allowed:
            raise FdgTypeError(f"{call.name} cannot take weights = {kind}", value.span, takes)
        return ir.Weights("learned" if kind == "learned" else "none"), None
    if isinstance(value, syntax.Index) and isinstance(value.value, syntax.Name) and value.value.id == "learned":
        if "per_index" not in allowed:
            raise FdgTypeError(f"{call.name} cannot take weights = learned[...]", value.span, takes)
        z = index(resolve(value.index), value.index.span, "the index of learned[...]")
        assert isinstance(z.type, ir.IndexWire)
        if z.type.axis != axis:
            raise FdgTypeError(
                f"learned[{z.node}] needs an index over {axis}, but {z.node} is over {z.type.axis}", value.index.span
            )
        if z.type.target.size is None:
            raise FdgTypeError(
                f"learned[{z.node}] needs an index with a fixed range",
                value.index.span,
                f"declare it like `input {z.node} : index {axis} -> 4` (or a parameter)",
            )
        return ir.Weights("per_index", count=z.type.target.size, source=z.node), z
    if isinstance(value, syntax.Name):
        try:
            found = resolve(value)
        except FdgTypeError:
            close = suggest(value.id, ["learned", "none"])
            if close is None:
                raise  # an unknown name, with the checker's own suggestion among the diagram's names
            raise FdgTypeError(f"unknown weights '{value.id}'", value.span, close) from None
        if isinstance(found, Wire) and isinstance(found.type, ir.WeightsWire):
            if "input" not in allowed:
                raise FdgTypeError(f"{call.name} cannot take external weights", value.span, takes)
            if found.type.axis != axis:
                raise FdgTypeError(
                    f"weights {value.id} are over {found.type.axis}, but this vertex is over {axis}",
                    value.span,
                    f"declare them `input {value.id} : weights over {axis}`",
                )
            return ir.Weights("input", source=found.node), found
        if isinstance(found, Wire) and isinstance(found.type, ir.Feature) and "input" in allowed:
            if found.type.axis != axis or any(ir_ != EVEN_SCALAR for _, ir_ in found.type.irreps):
                raise FdgTypeError(
                    f"weights {value.id} must be even scalars over {axis}, but {value.id} is {found.type}",
                    value.span,
                    "per-row weights are invariant: a wire of 0e channels over the vertex's axis (a radial MLP)",
                )
            return ir.Weights("input", source=found.node), found
        raise FdgTypeError(
            f"'{value.id}' is {what_is(found)}, not weights", value.span, f"{takes}, or a wire of 0e channels"
        )
    raise FdgTypeError(
        "weights must be learned, none, learned[index] or an input declared `: weights`", value.span, takes
    )


def _choices(allowed: tuple[str, ...]) -> str:
    spelled = [_spell(k) for k in allowed]
    return spelled[0] if len(spelled) == 1 else f"{', '.join(spelled[:-1])} or {spelled[-1]}"


def _spell(kind: str) -> str:
    return {"per_index": "learned[z]", "input": "an input of kind weights"}.get(kind, kind)


def check_size(weights: ir.Weights, call: Call, extra: Wire | None = None) -> None:
    """Refuse a vertex with too many weights, and per-row weights from a wire of the wrong width."""
    if extra is not None and isinstance(extra.type, ir.Feature) and extra.type.irreps.dim != weights.numel:
        opt = call.options["weights"]
        raise FdgTypeError(
            f"this {call.name} needs {weights.numel} weights per row, but {extra.node} has {extra.type.irreps.dim}",
            opt.span,
            f"make {extra.node} {weights.numel}x0e",
        )
    total = weights.numel * weights.count
    if total > MAX_WEIGHTS:
        raise FdgTypeError(
            f"this {call.name} would hold {total} weights (at most {MAX_WEIGHTS})",
            call.span,
            "lower the multiplicities, or use a mode with fewer weights (uvu instead of uvw)",
        )


#: most work on 3j tables for one couple or fuse: the sum over its distinct degree triples (l1, l2, l3) of
#: (2 l1 + 1)(2 l2 + 1), the coefficients the exact tables evaluate. Every path of sh(16) x sh(16) -> lmax 16 is
#: 995 537 and compiles in about 30 s (benchmarks/compile_time.py --lmax 16); sh(20) x sh(20) is 2.9e6
MAX_CG_WORK = 10**6


def check_cg_work(triples: set[tuple[int, int, int]], call: Call) -> None:
    """Refuse a vertex whose 3j tables would take more than ``MAX_CG_WORK`` to build."""
    work = sum((2 * l1 + 1) * (2 * l2 + 1) for l1, l2, _ in triples)
    if work > MAX_CG_WORK:
        top = max(max(t) for t in triples)
        raise FdgTypeError(
            f"this {call.name} reaches degree l = {top}: its 3j tables would hold about {work} coefficients "
            f"(at most {MAX_CG_WORK})",
            call.span,
            "lower lmax or the degrees of the inputs, or split it into smaller ones",
        )


#: what ``unreached = WORD`` makes of an output irrep no path reaches
UNREACHED = ("warn", "ignore", "error")


def warn_unreached(
    out: Irreps, reached: set[int], name: str, call: Call, warnings: list[Diagnostic], reach: str | None = None
) -> None:
    """A warning for each output irrep no path reaches (``reach``: what the inputs do reach, as a hint); the option
    ``unreached = ignore`` silences them and ``unreached = error`` makes the first an error."""
    assert call.target is not None
    policy = word(call, "unreached", UNREACHED) if "unreached" in call.options else "warn"
    for i, mul_ir in enumerate(out):
        if i in reached or policy == "ignore":
            continue
        message = f"{mul_ir} in the output of {name} is reached by no path; it will always be zero"
        if policy == "error":
            raise FdgTypeError(message, call.target.span, reach or "remove it from the output irreps")
        hint = f"{reach}; [unreached = ignore] silences this" if reach else "[unreached = ignore] silences this"
        warnings.append(Diagnostic("warning", message, call.target.span, hint))


def word(call: Call, option: str, words: tuple[str, ...]) -> str:
    """The value of an option that is one of ``words``."""
    value = call.options[option].value
    spelled = value.id if isinstance(value, syntax.Name) else None
    if spelled not in words:
        raise FdgTypeError(
            f"{option} is one of {', '.join(words)}", value.span, suggest(spelled, list(words)) if spelled else None
        )
    return spelled


def linear(call: Call, resolve: Resolve, env: Mapping[str, Number], warnings: list[Diagnostic]) -> Made:
    (x_arg,) = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, "the input of linear")
    assert isinstance(x.type, ir.Feature)
    if not isinstance(call.target, syntax.IrrepsSum):
        assert call.target is not None
        raise FdgTypeError("linear needs explicit output irreps", call.target.span, "e.g. -> 16x0e + 16x1o")
    out = irreps(call.target, env)
    weights, z = weights_option(call, resolve, x.type.axis, ("learned", "per_index"))
    paths = rules.linear_paths(x.type.irreps, out)
    if not paths:
        raise FdgTypeError(
            f"linear maps each irrep to itself, and no irrep of {out} is in its input {x.type.irreps}",
            call.target.span,
            "use couple to change degrees or parities",
        )
    bias = "bias" in call.options and word(call, "bias", ("true", "false")) == "true"
    if bias and not any(ir_.is_scalar() for _, ir_ in out):
        raise FdgTypeError(
            f"a bias is added to the 0e outputs, and {out} has none", call.options["bias"].span, "remove bias = true"
        )
    reached = {p.i_out for p in paths} | ({i for i, (_, ir_) in enumerate(out) if ir_.is_scalar()} if bias else set())
    warn_unreached(out, reached, "linear", call, warnings)
    numel = rules.linear_numel(x.type.irreps, out, paths)
    check_size(ir.Weights(weights.kind, numel, weights.count), call)
    op = ir.Linear(ir.Weights(weights.kind, numel, weights.count, weights.source), out, paths, call.span, bias)
    return Made(op, ir.Feature(x.type.axis, out), (x,) if z is None else (x, z))


def spherical_harmonics(call: Call, resolve: Resolve, env: Mapping[str, Number]) -> Made:
    v_arg, l_arg = call.positional
    v = feature(resolve(v_arg.value), v_arg.span, "the input of sh")
    assert isinstance(v.type, ir.Feature)
    if v.type.irreps != Irreps("1o"):
        raise FdgTypeError(
            f"sh takes a single vector (1o), but this is {v.type.irreps}",
            v_arg.span,
            "declare the vector as `input vec : 1o over edge`",
        )
    lmax = integer(l_arg.value, env, "the degree of sh", 0, MAX_L)
    out = Irreps.spherical_harmonics(lmax)
    return Made(ir.SphericalHarmonics(lmax, call.span), ir.Feature(v.type.axis, out), (v,))


def scatter_sum(call: Call, resolve: Resolve) -> Made:
    (x_arg,) = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, "the input of sum")
    by = call.keywords["by"]
    i = index(resolve(by.value), by.value.span, "by")
    assert isinstance(x.type, ir.Feature) and isinstance(i.type, ir.IndexWire)
    if x.type.axis != i.type.axis:
        raise FdgTypeError(
            f"sum by {i.node} needs a wire over {i.type.axis}, but this is over {x.type.axis}", x_arg.span
        )
    return Made(ir.ScatterSum(call.span), ir.Feature(i.type.target, x.type.irreps), (x, i))


def gather(expr: syntax.Index, resolve: Resolve) -> Made:
    x = feature(resolve(expr.value), expr.value.span, "a gathered value")
    i = index(resolve(expr.index), expr.index.span, "the index of a gather")
    assert isinstance(x.type, ir.Feature) and isinstance(i.type, ir.IndexWire)
    if x.type.axis != i.type.target:
        raise FdgTypeError(
            f"{i.node} points into {i.type.target}, but this wire is over {x.type.axis}", expr.index.span
        )
    return Made(ir.Gather(expr.span), ir.Feature(i.type.axis, x.type.irreps), (x, i))
