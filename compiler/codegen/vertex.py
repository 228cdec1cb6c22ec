"""Codegen for one vertex: the lines of ``forward`` that compute it.

Couple and linear vertices become, per path, the pairwise einsums the plan chose; paths into the
same output irrep are added, and the output blocks are concatenated in ``mul_ir`` layout.  The
normalization constant of a path multiplies its CG tensor (the smallest operand) or its shared
weights, never a batched tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fdg import ir
from fdg.checker.activations import FUNCTIONS, expression
from fdg.codegen import fuse, grouped, power
from fdg.codegen.names import Temp, Temps
from fdg.planning.einsum import Contraction
from fdg.planning.plan import Plan
from fdg.runtime import Irreps


def emit_vertex(plan: Plan, node: str, temps: Temps) -> list[str]:
    """The lines of ``forward`` computing one vertex, by the emitter of its lowering."""
    if node in plan.absorbed:  # emitted with the kernel call that computes it
        return []
    lines = _comment(plan, node)
    args = _args(plan, node)
    if node in plan.indexed:
        ix = plan.indexed[node]
        before, after = ([line for n in absorbed if n is not None
                          for line in [*_comment(plan, n), *_single(plan, n, _args(plan, n), temps.of(plan.names[n]))]]
                         for absorbed in (ix.gathers, (ix.scatter,)))  # fmt: skip
        emit = fuse.emit_call if plan.lowered[node].lowering == "fuse" else grouped.emit_indexed
        return lines + emit(plan, node, args, temps.of(plan.names[node]), before, after)
    return lines + EMITTERS[plan.lowered[node].lowering](plan, node, args, temps.of(plan.names[node]))


def _args(plan: Plan, node: str) -> list[str]:
    return [plan.names[n] for n in plan.diagram.operands(node)]


def _comment(plan: Plan, node: str) -> list[str]:
    d = plan.diagram
    return [f"# {plan.names[node]} = {ir.describe(d.op(node))}({', '.join(_args(plan, node))}): {d.out(node)}"]


def _single(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """A vertex of one torch call."""
    var, op, out = plan.names[node], plan.diagram.op(node), plan.diagram.out(node)
    match op:
        case ir.SphericalHarmonics(lmax=lmax):
            return [f"{var} = fdg.runtime.spherical_harmonics({lmax}, {args[0]})"]
        case ir.Gather():
            return [f"{var} = {args[0]}.index_select(0, {args[1]})"]
        case ir.ScatterSum():
            assert isinstance(out, ir.Feature)
            size = plan.sizes[out.axis.name]
            return [f"{var} = {args[0]}.new_zeros(({size}, {out.irreps.dim})).index_add(0, {args[1]}, {args[0]})"]
        case ir.Add():
            return [f"{var} = {' + '.join(args)}"]
        case ir.Scale(factor=factor):
            return [f"{var} = {args[0]} * {factor!r}"]
        case ir.Cat():
            return [f"{var} = torch.cat([{', '.join(args)}], dim=1)"]
        case ir.Gate():
            return _gate(plan, node, args, temp)
        case ir.NormActivation():
            return _norm_activation(plan, node, args, temp)
        case ir.Radial(kind="length"):
            return [f"{var} = fdg.runtime.edge_length({args[0]})"]
        case ir.Radial(kind="bessel", args=(n, r_max)):
            return [f"{var} = fdg.runtime.bessel({args[0]}, {int(n)}, {r_max!r})"]
        case ir.Radial(kind="cutoff", args=(r_max, p)):
            return [f"{var} = fdg.runtime.polynomial_cutoff({args[0]}, {r_max!r}, {int(p)})"]
        case ir.Activation(function=function):
            return [f"{var} = {expression(function, args[0])}  # normalized to unit second moment, as e3nn"]
        case ir.Select(start=start, stop=stop, channels=channels):
            source = plan.diagram.out(plan.diagram.operands(node)[0])
            assert isinstance(source, ir.Feature)
            first, end = op.bounds(source.irreps)
            what = f"blocks {start}..{stop - 1}"
            if channels is not None:
                what = f"channels {channels[0]}..{channels[1] - 1} of block {start}"
            return [f"{var} = {args[0]}[:, {first}:{end}]  # {what}"]
        case ir.Sort(order=order):
            source = plan.diagram.out(plan.diagram.operands(node)[0])
            assert isinstance(source, ir.Feature)
            parts = temp("blocks")
            picked = ", ".join(f"{parts}[{k}]" for k in order)
            return [
                f"{parts} = {args[0]}.split({_split(source.irreps)}, dim=1)",
                f"{var} = torch.cat([{picked}], dim=1)",
            ]
    raise AssertionError(f"codegen has no rule for {op!r}")


def _gate(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """The scalars, then each gated block times its channels' gates."""
    gated = plan.diagram.out(plan.diagram.operands(node)[2])
    assert isinstance(gated, ir.Feature)
    n, blocks = temp("n"), temp("gated")
    lines = [f"{n} = {args[2]}.shape[0]", f"{blocks} = {args[2]}.split({_split(gated.irreps)}, dim=1)"]
    pieces, c = [args[0]], 0
    for k, (mul, ir_) in enumerate(gated.irreps):
        gates = f"{args[1]}[:, {c}:{c + mul}, None]"
        pieces.append(f"({blocks}[{k}].reshape({n}, {mul}, {ir_.dim}) * {gates}).reshape({n}, {mul * ir_.dim})")
        c += mul
    return [*lines, f"{plan.names[node]} = torch.cat([{', '.join(pieces)}], dim=1)"]


def _norm_activation(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """Each channel of each block times f(|x|) / |x|, its squared norm clamped below at epsilon**2 (as e3nn)."""
    op, out = plan.diagram.op(node), plan.diagram.out(node)
    assert isinstance(op, ir.NormActivation) and isinstance(out, ir.Feature)
    n, blocks, block, norm = temp("n"), temp("blocks"), temp("block"), temp("norm")
    lines = [f"{n} = {args[0]}.shape[0]", f"{blocks} = {args[0]}.split({_split(out.irreps)}, dim=1)"]
    pieces = []
    for k, (mul, ir_) in enumerate(out.irreps):
        lines += [
            f"{block}{k} = {blocks}[{k}].reshape({n}, {mul}, {ir_.dim})",
            f"{norm}{k} = {block}{k}.pow(2).sum(-1, keepdim=True).clamp(min={op.EPSILON**2!r}).sqrt()",
        ]
        scaled = f"{FUNCTIONS[op.function][1].format(x=f'{norm}{k}')} / {norm}{k}"
        pieces.append(f"({block}{k} * ({scaled})).reshape({n}, {mul * ir_.dim})")
    return [*lines, f"{plan.names[node]} = torch.cat([{', '.join(pieces)}], dim=1)"]


def _per_call(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """Both lowerings of a coupling whose best one depends on the batch size, picked per call by its rows."""
    choice = plan.choices[node]
    assert choice.crossover is not None and choice.below is not None
    lowered = {"dense": _contract(plan, node, args, temp), "grouped": grouped.emit_call(plan, node, args, temp)}
    small, large = (lowered["dense" if name == "dense" else "grouped"] for name in (choice.below, choice.lowering))
    why = f"{choice.below} is estimated faster below {choice.crossover} rows, {choice.lowering} from there on"
    return [
        f"if {args[0]}.shape[0] < {choice.crossover}:  # {why}",
        *("    " + line for line in small),
        "else:",
        *("    " + line for line in large),
    ]


def _split(irreps: Irreps) -> str:
    """The sizes of a wire's irrep blocks; ``split`` (not slicing) so that the backward is one ``cat``."""
    return str([mul * ir_.dim for mul, ir_ in irreps])


def _contract(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """The dense lowering: per path, the pairwise einsums the plan chose."""
    d = plan.diagram
    op = d.op(node)
    assert isinstance(op, ir.Couple | ir.Linear)
    n = temp("n")
    lines = [f"{n} = {args[0]}.shape[0]"]
    operands = [d.out(src) for src in d.operands(node)]
    data = [t for t in operands if isinstance(t, ir.Feature)][: 2 if isinstance(op, ir.Couple) else 1]
    views: list[dict[int, str]] = [{} for _ in data]

    parts: dict[int, str] = {}

    def block(which: int, i: int) -> str:
        if i not in views[which]:
            t = data[which]
            assert isinstance(t, ir.Feature)
            letter = "ab"[which] if isinstance(op, ir.Couple) else "x"
            if which not in parts:
                parts[which] = temp(letter)
                lines.append(f"{parts[which]} = {args[which]}.split({_split(t.irreps)}, dim=1)")
            name = temp(f"{letter}{i}")
            mul, ir_ = t.irreps[i]
            lines.append(f"{name} = {parts[which]}[{i}].reshape({n}, {mul}, {ir_.dim})")
            views[which][i] = name
        return views[which][i]

    table = _weight_table(plan, node, args, temp, lines)
    slots: dict[int, list[str]] = {}
    for k, c in enumerate(plan.contractions[node]):
        exprs = []
        for role, i in zip(("x1", "x2") if isinstance(op, ir.Couple) else ("x",), c.i_in, strict=True):
            exprs.append(block(0 if role in ("x1", "x") else 1, i))
        scaled = False
        if c.cg is not None:
            exprs.append(f"(self.{c.cg} * {c.alpha!r})")
            scaled = True
        if "w" in c.roles:
            exprs.append(_weight(plan, node, c, table, n, scale=not scaled))
            scaled = scaled or table is None
        result = _pairwise(c, exprs, temp, lines, k)
        if not scaled:
            lines[-1] += f" * {c.alpha!r}"
        slots.setdefault(c.i_out, []).append(result)

    var = plan.names[node]
    bias = plan.biases[node].name if node in plan.biases else None
    pieces = _outputs(op.irreps_out, slots, args[0], n, bias)
    lines.append(f"{var} = {pieces[0]}" if len(pieces) == 1 else f"{var} = torch.cat([{', '.join(pieces)}], dim=1)")
    return lines


def _weight_table(plan: Plan, node: str, args: list[str], temp: Temp, lines: list[str]) -> str | None:
    """Per-row weights (an input, or ``learned[z]`` rows) split per path; None for shared weights."""
    weights = plan.diagram.op(node).weights
    if weights.kind == "input":
        table = args[-1]
    elif weights.kind == "per_index":
        table = temp("w")
        param = plan.parameters[node].name
        lines.append(f"{table} = self.{param}.index_select(0, {args[-1]})  # one weight set per {weights.source}")
    else:
        return None
    # one split, whose backward is a single cat (slices would each zero-fill a full gradient)
    split = temp("ws")
    lines.append(f"{split} = {table}.split({[math.prod(c.weight_shape) for c in plan.contractions[node]]}, dim=1)")
    return split


def _outputs(irreps_out: Irreps, slots: dict[int, list[str]], first: str, n: str, bias: str | None = None) -> list[str]:
    """Per output irrep, the sum of its paths (zeros where none reaches it), flattened to ``[n, mul * dim]``; with
    ``bias`` (a parameter), its slice added to every ``0e`` block."""
    pieces = []
    offset = 0
    for i_out, (mul, ir_) in enumerate(irreps_out):
        size = mul * ir_.dim
        if i_out not in slots:
            piece = f"{first}.new_zeros(({n}, {size}))"
        else:
            total = " + ".join(slots[i_out])
            piece = f"({total}).reshape({n}, {size})" if len(slots[i_out]) > 1 else f"{total}.reshape({n}, {size})"
        if bias is not None and ir_.is_scalar():
            piece = f"{piece} + self.{bias}[{offset}:{offset + mul}]"
            offset += mul
        pieces.append(piece)
    return pieces


def _weight(plan: Plan, node: str, c: Contraction, table: str | None, n: str, scale: bool) -> str:
    """The weights of one path: a view of the learned vector, or of the per-sample table."""
    start, stop = c.weight_offset, c.weight_offset + math.prod(c.weight_shape)
    shape = ", ".join(map(str, c.weight_shape))
    if table is None:
        view = f"self.{plan.parameters[node].name}[{start}:{stop}].view({shape})"
        return f"({view} * {c.alpha!r})" if scale else view
    return f"{table}[{plan.contractions[node].index(c)}].reshape({n}, {shape})"


def _pairwise(c: Contraction, exprs: list[str], temp: Temp, lines: list[str], k: int) -> str:
    """Emit the path's einsums in the planned order; returns the name holding the result."""
    live = list(exprs)
    name = ""
    for step in c.steps:
        left, right = live[step.left], live[step.right]
        name = temp(f"p{k}") if step is c.steps[-1] else temp(f"p{k}_{len(live)}")
        lines.append(f'{name} = torch.einsum("{step.spec}", {left}, {right})')
        live = [e for m, e in enumerate(live) if m not in (step.left, step.right)] + [name]
    return name


#: (plan, node, its operands' names, its temporaries) -> the lines of ``forward`` computing it
Emitter = Callable[[Plan, str, list[str], Temp], list[str]]

#: one emitter per lowering of fdg.planning.lowerings.LOWERINGS, under its name
EMITTERS: dict[str, Emitter] = {
    "dense": _contract,
    "grouped": grouped.emit_call,
    "grouped+sparse": grouped.emit_call,
    "fused": grouped.emit_call,
    "per-call": _per_call,
    "fuse": fuse.emit_call,
    "power": power.emit_call,
    "single": _single,
}
