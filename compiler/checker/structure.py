"""The vertices that rearrange or transform a wire without coupling: ``cat``, ``select``, ``sort`` and the pointwise
nonlinearities of scalars (``silu(x)``, :mod:`fdg.checker.activations`)."""

from __future__ import annotations

from collections.abc import Mapping

from fdg import ir
from fdg.checker import rules
from fdg.checker.activations import FUNCTIONS
from fdg.checker.evaluate import MAX_MUL, Number, integer, number, suggest
from fdg.checker.vertices import Call, Made, Resolve, feature, same_axis
from fdg.errors import FdgTypeError
from fdg.frontend import syntax
from fdg.runtime import Irrep, Irreps


def cat(call: Call, resolve: Resolve) -> Made:
    """``cat(a, b, ...)``: the wires side by side, their irreps appended in order."""
    wires = [feature(resolve(a.value), a.span, "an input of cat") for a in call.positional]
    assert isinstance(wires[0].type, ir.Feature)
    axis = wires[0].type.axis
    for w, arg in zip(wires, call.positional, strict=True):
        same_axis(axis, w, arg.span, "this input")
    joined = Irreps([block for w in wires if isinstance(w.type, ir.Feature) for block in w.type.irreps])
    return Made(ir.Cat(call.span), ir.Feature(axis, joined), tuple(wires))


def select(call: Call, resolve: Resolve, env: Mapping[str, Number]) -> Made:
    """``select(x, start, stop)``: blocks ``start .. stop - 1`` of x's irreps (e3nn's ``irreps[start:stop]``)."""
    x_arg, start_arg, stop_arg = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, "the input of select")
    assert isinstance(x.type, ir.Feature)
    blocks = len(x.type.irreps)
    start = integer(start_arg.value, env, "the first block", 0, MAX_MUL)
    stop = integer(stop_arg.value, env, "the end block", 0, MAX_MUL)
    if not 0 <= start < stop <= blocks:
        raise FdgTypeError(
            f"select takes blocks start .. stop - 1 with 0 <= start < stop <= {blocks}, got {start} and {stop}",
            call.span,
            f"the input has {blocks} blocks: {' + '.join(str(b) for b in x.type.irreps)}",
        )
    op = ir.Select(start, stop, call.span)
    return Made(op, ir.Feature(x.type.axis, op.picked(x.type.irreps)), (x,))


def channels(call: Call, resolve: Resolve, env: Mapping[str, Number]) -> Made:
    """``channels(x, block, start, stop)``: channels ``start .. stop - 1`` of one block of x (the scalars and the gates
    that e3nn's ``Gate`` cuts from one block of its input)."""
    x_arg, block_arg, start_arg, stop_arg = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, "the input of channels")
    assert isinstance(x.type, ir.Feature)
    layout = " + ".join(str(b) for b in x.type.irreps)
    blocks = len(x.type.irreps)
    block = integer(block_arg.value, env, "the block", 0, MAX_MUL)
    if block >= blocks:
        raise FdgTypeError(f"channels: block {block} of a wire with {blocks} blocks", block_arg.span, f"x is {layout}")
    mul = x.type.irreps[block].mul
    start = integer(start_arg.value, env, "the first channel", 0, MAX_MUL)
    stop = integer(stop_arg.value, env, "the end channel", 0, MAX_MUL)
    if not 0 <= start < stop <= mul:
        raise FdgTypeError(
            f"channels takes channels start .. stop - 1 with 0 <= start < stop <= {mul}, got {start} and {stop}",
            call.span,
            f"block {block} of the input is {x.type.irreps[block]}",
        )
    op = ir.Select(block, block + 1, call.span, (start, stop))
    return Made(op, ir.Feature(x.type.axis, op.picked(x.type.irreps)), (x,))


def gated_irreps(scalars: Irreps, gates: Irreps, gated: Irreps) -> Irreps | str:
    """The output of ``gate(scalars, gates, gated)``, or why there is none: the scalars, then each gated block with its
    parity times its gates' (e3nn's ``ElementwiseTensorProduct`` of gates and gated, channel by channel)."""
    if any(ir_.l != 0 for _, ir_ in (*scalars, *gates)):
        return "the scalars and the gates must be scalars (0e or 0o)"
    parities = [ir_.p for mul, ir_ in gates for _ in range(mul)]
    channels = sum(mul for mul, _ in gated)
    if len(parities) != channels:
        return f"one gate per gated channel: {gated} has {channels} channels, {gates} gives {len(parities)} gates"
    out, c = list(scalars), 0
    for mul, ir_ in gated:
        block = set(parities[c : c + mul])
        if len(block) > 1:
            return f"the gates of {mul}x{ir_} mix parities"
        out.append((mul, Irrep(ir_.l, ir_.p * block.pop()) if mul else ir_))
        c += mul
    return Irreps(out)


def gate(call: Call, resolve: Resolve) -> Made:
    """``gate(scalars, gates, gated)``: e3nn's ``Gate`` with its activations applied first
    (``gate(silu(s), sigmoid(g), v)`` is ``Gate(s, [silu], g, [sigmoid], v)``)."""
    names = ("scalars", "gates", "gated")
    wires = [feature(resolve(a.value), a.span, f"the {n} of gate") for a, n in zip(call.positional, names, strict=True)]
    assert isinstance(wires[0].type, ir.Feature)
    axis = wires[0].type.axis
    for w, arg in zip(wires, call.positional, strict=True):
        same_axis(axis, w, arg.span, "this input")
    irreps = [w.type.irreps for w in wires if isinstance(w.type, ir.Feature)]
    out = gated_irreps(*irreps)
    if isinstance(out, str):
        raise FdgTypeError(f"gate: {out}", call.span, "usage: gate(silu(scalars), sigmoid(gates), gated)")
    return Made(ir.Gate(call.span), ir.Feature(axis, out), tuple(wires))


def radial(call: Call, resolve: Resolve, env: Mapping[str, Number]) -> Made:
    """``length(vec)`` (a ``1o`` vector's length), ``bessel(r, n, r_max)`` and ``cutoff(r, r_max, p)`` of a length
    ``r`` (``1x0e``): MACE's and NequIP's radial features (``fdg.runtime.radial``)."""
    first = call.positional[0]
    x = feature(resolve(first.value), first.span, f"the input of {call.name}")
    assert isinstance(x.type, ir.Feature)
    wanted = Irreps("1o") if call.name == "length" else Irreps("1x0e")
    if x.type.irreps != wanted:
        what = "a vector (1o)" if call.name == "length" else "a length (1x0e), such as length(vec)"
        raise FdgTypeError(f"{call.name} takes {what}, but this is {x.type.irreps}", first.span)
    out = Irreps("1x0e")
    args: tuple[float, ...] = ()
    if call.name == "bessel":
        n = integer(call.positional[1].value, env, "the number of Bessel functions", 1, MAX_MUL)
        args, out = (n, _positive(call, 2, env, "r_max")), Irreps(f"{n}x0e")
    elif call.name == "cutoff":
        p = integer(call.positional[2].value, env, "the degree p of the cutoff", 1, 64)
        args = (_positive(call, 1, env, "r_max"), p)
    return Made(ir.Radial(call.name, args, call.span), ir.Feature(x.type.axis, out), (x,))


def _positive(call: Call, k: int, env: Mapping[str, Number], what: str) -> float:
    arg = call.positional[k]
    value = number(arg.value, env, what)
    if value <= 0:
        raise FdgTypeError(f"{what} must be positive, got {value}", arg.span)
    return float(value)


def sort(call: Call, resolve: Resolve) -> Made:
    """``sort(x)``: x's irreps blocks in the order of e3nn's ``Irreps.sort()`` (not merged: ``Irreps.simplify``
    would add multiplicities, which MACE and NequIP do not do to ``irreps_mid``)."""
    (x_arg,) = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, "the input of sort")
    assert isinstance(x.type, ir.Feature)
    order = rules.sort_order(x.type.irreps)
    out = Irreps([x.type.irreps[k] for k in order])
    return Made(ir.Sort(order, call.span), ir.Feature(x.type.axis, out), (x,))


def norm_activation(call: Call, resolve: Resolve) -> Made:
    """``norm_activation(x, f)``: e3nn's ``NormActivation(x, f)``; any block, any function (the norm is even)."""
    x_arg, f_arg = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, "the input of norm_activation")
    f = f_arg.value
    if not isinstance(f, syntax.Name) or f.id not in FUNCTIONS:
        close = suggest(f.id, list(FUNCTIONS)) if isinstance(f, syntax.Name) else None
        raise FdgTypeError(
            "the second argument of norm_activation names a function",
            f_arg.span,
            close or f"one of: {', '.join(FUNCTIONS)}; usage: norm_activation(x, sigmoid)",
        )
    return Made(ir.NormActivation(f.id, call.span), x.type, (x,))


def activation(call: Call, resolve: Resolve) -> Made:
    """``silu(x)`` and the others: every block of ``x`` must be a scalar; ``0o`` blocks need an odd or even function."""
    (x_arg,) = call.positional
    x = feature(resolve(x_arg.value), x_arg.span, f"the input of {call.name}")
    assert isinstance(x.type, ir.Feature)
    parity = FUNCTIONS[call.name][0]
    out = []
    for mul, ir_ in x.type.irreps:
        if ir_.l != 0:
            raise FdgTypeError(
                f"{call.name} applies to scalars, but {x.type.irreps} has {mul}x{ir_}",
                x_arg.span,
                f"select the scalars (select(x, start, stop)), gate the others, or norm_activation(x, {call.name})",
            )
        if ir_.p == -1 and parity == 0:
            raise FdgTypeError(
                f"{call.name} of an odd scalar ({mul}x{ir_}) is neither odd nor even: it would break parity",
                x_arg.span,
                "use an odd function (tanh) or an even one (abs) on 0o, as e3nn requires",
            )
        out.append((mul, Irrep(0, ir_.p if ir_.p == 1 else parity)))
    op = ir.Activation(call.name, call.span)
    return Made(op, ir.Feature(x.type.axis, Irreps(out)), (x,))
