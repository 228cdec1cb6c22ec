"""Codegen for the grouped lowering (``fdg.planning.grouping``): a method computing one slice of rows, and its call.

The method reads top to bottom as the algorithm: coupling matrices of ``b`` (one matmul with a constant), weights
regrouped block by block, the channels of ``a`` with components first (``ir_mul``, one gather), then for ``uvu`` per
output irrep one ``bmm`` and a ``baddbmm`` per further block, for ``uvw`` one ``bmm`` per input irrep and one matmul
with the stacked weights per output irrep, and the output blocks back in ``mul_ir`` layout (one gather).
"""

from __future__ import annotations

import math

from fdg import ir
from fdg.codegen.names import Temp
from fdg.planning.grouping import Grouped, kernel_blocks
from fdg.planning.plan import Plan
from fdg.runtime.module import index_of, inverse_of


def emit_call(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """The line of ``forward`` computing a grouped vertex through its method, slice by slice."""
    lines, rows, sliced = _sliced(plan, node, args, temp)
    if not plan.grouped[node].fused:
        return [*lines, sliced]
    return [
        *lines,
        f"if fdg.runtime.channelwise_available({rows[0]}):  # one native CPU kernel call",
        f"    {plan.names[node]} = {_kernel(plan, node, rows)}",
        "else:  # off the CPU, or without a C++ compiler: the same coupling in slices of batched matmuls",
        f"    {sliced}",
    ]


def emit_indexed(
    plan: Plan, node: str, args: list[str], temp: Temp, gather: list[str], scatter: list[str]
) -> list[str]:
    """A native kernel call that also reads its first operand through the gather and sums its result by the index of
    the scatter-sum it absorbs (``plan.indexed``); the fallback runs the gather (lines ``gather``), the coupling in
    slices and the scatter-sum (lines ``scatter``) as separate steps."""
    d, ix = plan.diagram, plan.indexed[node]
    lines, rows, sliced = _sliced(plan, node, args, temp)
    x, x_index, y_index, y_rows, result = rows[0], "None", "None", "0", plan.names[node]
    if ix.gathers[0] is not None:
        x, x_index = (plan.names[n] for n in d.operands(ix.gathers[0]))
    if ix.scatter is not None:
        y_index, result = plan.names[d.operands(ix.scatter)[1]], plan.names[ix.scatter]
        out = d.out(ix.scatter)
        assert isinstance(out, ir.Feature)
        y_rows = plan.sizes[out.axis.name]
    call = _kernel(plan, node, [x, *rows[1:]], f", {x_index}, {y_index}, {y_rows}")
    return [
        *lines,
        f"if fdg.runtime.channelwise_available({x}):  # one native CPU kernel call, indices read in place",
        f"    {result} = {call}",
        "else:  # off the CPU, or without a C++ compiler: gather, the coupling in slices of batched matmuls, scatter",
        *("    " + line for line in [*gather, sliced, *scatter]),
    ]


def _sliced(plan: Plan, node: str, args: list[str], temp: Temp) -> tuple[list[str], list[str], str]:
    """The lines before the call (a per-index weight table), the row operands, and the call slice by slice."""
    op = plan.diagram.op(node)
    assert isinstance(op, ir.Couple)
    g = plan.grouped[node]
    rows = args[:2]
    if op.weights.kind == "input":
        rows.append(args[2])
    lines = []
    if op.weights.kind == "per_index":
        table = temp("w")
        param = plan.parameters[node].name
        lines.append(f"{table} = self.{param}.index_select(0, {args[2]})  # one weight set per {op.weights.source}")
        rows.append(table)
    return lines, rows, f"{plan.names[node]} = fdg.runtime.chunked(self.{g.method}, {g.chunk}, {', '.join(rows)})"


def _kernel(plan: Plan, node: str, rows: list[str], indices: str = "") -> str:
    """The native kernel's call on the row operands (``indices``: its index arguments, if any)."""
    op, g = plan.diagram.op(node), plan.grouped[node]
    assert isinstance(op, ir.Couple)
    a = plan.diagram.out(plan.diagram.operands(node)[0])
    assert isinstance(a, ir.Feature)
    weights = rows[2] if len(rows) == 3 else f"self.{plan.parameters[node].name}"
    sizes = [a.irreps.dim, g.matrix_columns, op.weights.numel, op.irreps_out.dim]
    return (
        f"fdg.runtime.channelwise({rows[0]}, {rows[1]} @ self.{g.matrix}, {weights}, self.{g.table}, {sizes}{indices})"
    )


def emit_method(plan: Plan, node: str) -> list[str]:
    """The method computing a grouped vertex on a slice of rows (indented for the class body)."""
    d = plan.diagram
    op = d.op(node)
    assert isinstance(op, ir.Couple)
    g = plan.grouped[node]
    a, b = (d.out(n) for n in d.operands(node)[:2])
    assert isinstance(a, ir.Feature) and isinstance(b, ir.Feature)
    per_row = op.weights.kind in ("input", "per_index")
    signature = "self, a: torch.Tensor, b: torch.Tensor" + (", w: torch.Tensor" if per_row else "")
    args = ", ".join(plan.names[n] for n in d.operands(node)[:2])
    sparse = f"fdg.runtime.sparse_matmul(b, self.{index_of(g.matrix)}, self.{g.matrix}, {g.matrix_columns})"
    product = sparse if g.sparse else f"(b @ self.{g.matrix})"
    what = (
        "One batched matmul per input irrep, one matmul per output irrep."
        if g.mode == "uvw"
        else "One batched matmul per block."
    )
    if g.mode == "uvw":  # the blocks of one input irrep stack into one matmul
        sizes = [sum(blk.columns for blk in g.blocks if blk.i_in == i) for i in _inputs(g)]
    else:
        sizes = [blk.columns for blk in g.blocks]
    body = [
        f'"""{plan.names[node]} = couple({args}) [mode = {g.mode}] on a slice of rows.',
        "",
        what,
        '"""',
        "n = a.shape[0]",
        "# per-row coupling matrices: CG tensors of all paths contracted with b",
        f"cg = {product}.split({sizes}, dim=1)",
    ]
    source = "w" if per_row else f"self.{plan.parameters[node].name}"
    body.append(f"w = {source}.split({[math.prod(p.shape) for p in op.paths]}, dim={1 if per_row else 0})  # per path")
    names = [f"a{i}" for i in range(len(a.irreps))]
    # components first (ir_mul), reordered by one gather: every block then reads a contiguous [n, 2l+1, mul]
    body.append(
        f"{f'({names[0]},)' if len(names) == 1 else ', '.join(names)} = fdg.runtime.permute_columns("
        f"a, self.{inverse_of(g.layout_a)}, self.{g.layout_a}).split({[m * r.dim for m, r in a.irreps]}, dim=1)"
    )
    for i in _inputs(g):
        mul, ir_ = a.irreps[i]
        body.append(f"a{i} = a{i}.view(n, {ir_.dim}, {mul})")
    started = _uvw(op, a, b, g, body) if g.mode == "uvw" else _uvu(op, a, b, g, body, "n" if per_row else "1")
    pieces = []
    for i, (mul, ir_) in enumerate(op.irreps_out):
        pieces.append(f"y{i}.reshape(n, {mul * ir_.dim})" if i in started else f"a.new_zeros(n, {mul * ir_.dim})")
    body.append("# the output blocks, [n, 2l+1, mul] each, back to mul_ir by one gather")
    if len(pieces) == 1:
        body.append(f"y = {pieces[0]}")
    else:
        body += ["y = torch.cat(", "    [", *(f"        {p}," for p in pieces), "    ],", "    dim=1,", ")"]
    body.append(f"return fdg.runtime.permute_columns(y, self.{g.layout_y}, self.{inverse_of(g.layout_y)})")
    return ["", f"    def {g.method}({signature}) -> torch.Tensor:", *("        " + line for line in body)]


def _inputs(g: Grouped) -> list[int]:
    return sorted({blk.i_in for blk in g.blocks})


def _uvu(op: ir.Couple, a: ir.Feature, b: ir.Feature, g: Grouped, body: list[str], rows: str) -> set[int]:
    """Per block, the weights times the channels of ``a`` and one (b)bmm into its output irrep ``y{i}``."""
    started: set[int] = set()
    for k, blk in enumerate(g.blocks):
        paths = ", ".join(_path(a, b, op.paths[p]) for p in blk.paths)
        body.append(f"# {op.irreps_out[blk.i_out].ir} <- {paths}")
        if len(blk.paths) == 1:
            weights = f"w[{blk.paths[0]}].view({rows}, 1, 1, {blk.mul})"
        else:  # the block's paths are not adjacent in e3nn's weight layout
            stacked = ", ".join(f"w[{p}]" for p in blk.paths)
            weights = (
                f"torch.stack([{stacked}], dim={0 if rows == '1' else 1}).view({rows}, {len(blk.paths)}, 1, {blk.mul})"
            )
        channels = f"({weights} * a{blk.i_in}.unsqueeze(1)).reshape(n, {blk.width}, {blk.mul})"
        y = f"y{blk.i_out}"
        if blk.weights_after:
            matmul = f"torch.bmm(cg[{k}].view(n, {blk.d_out}, {blk.width}), a{blk.i_in})"
            scale = f"w[{blk.paths[0]}].view({rows}, 1, {blk.mul})"
            body.append(
                f"{y} = torch.addcmul({y}, {matmul}, {scale})" if blk.i_out in started else f"{y} = {matmul} * {scale}"
            )
        elif blk.width == 1:  # an outer product: broadcasting beats a matmul with one term
            term = f"cg[{k}].view(n, {blk.d_out}, 1) * {channels}"
            body.append(f"{y} = {y} + {term}" if blk.i_out in started else f"{y} = {term}")
        else:
            matrix = f"cg[{k}].view(n, {blk.d_out}, {blk.width})"
            call = (
                f"torch.baddbmm({y}, {matrix}, {channels})"
                if blk.i_out in started
                else f"torch.bmm({matrix}, {channels})"
            )
            body.append(f"{y} = {call}")
        started.add(blk.i_out)
    return started


def _uvw(op: ir.Couple, a: ir.Feature, b: ir.Feature, g: Grouped, body: list[str]) -> set[int]:
    """Per input irrep one bmm of its paths' stacked coupling matrices with ``a``; per output irrep one matmul of its
    paths' results, side by side, with their ``[u, w]`` weights stacked."""
    where: dict[int, str] = {}  # path -> the name of its [n, 2l3+1, u] result
    for j, i in enumerate(_inputs(g)):
        blocks = [blk for blk in g.blocks if blk.i_in == i]
        body.append(f"# {', '.join(_path(a, b, op.paths[blk.paths[0]]) for blk in blocks)}, without weights")
        rows = sum(blk.d_out for blk in blocks)
        split = f".split({[blk.d_out for blk in blocks]}, dim=1)" if len(blocks) > 1 else ".unsqueeze(0)"
        body.append(f"t{i} = torch.bmm(cg[{j}].view(n, {rows}, {blocks[0].d_in}), a{i}){split}")
        for k, blk in enumerate(blocks):
            where[blk.paths[0]] = f"t{i}[{k}]"
    started: set[int] = set()
    for o, (w_mul, ir_out) in enumerate(op.irreps_out):
        paths = [p for p, path in enumerate(op.paths) if path.i_out == o]
        if not paths:
            continue
        started.add(o)
        body.append(f"# {ir_out} <- {', '.join(_path(a, b, op.paths[p]) for p in paths)}, mixed over channels")
        width = sum(a.irreps[op.paths[p].i1].mul for p in paths)
        weights = [f"w[{p}].view({a.irreps[op.paths[p].i1].mul}, {w_mul})" for p in paths]
        if len(paths) == 1:
            z, weight = where[paths[0]], weights[0]
        else:
            z, weight = (
                f"torch.cat([{', '.join(where[p] for p in paths)}], dim=2)",
                f"torch.cat([{', '.join(weights)}])",
            )
        body.append(f"y{o} = ({z}.reshape(n * {ir_out.dim}, {width}) @ {weight}).view(n, {ir_out.dim}, {w_mul})")
    return started


def _path(a: ir.Feature, b: ir.Feature, p: ir.CouplePath) -> str:
    return f"{a.irreps[p.i1].ir} x {b.irreps[p.i2].ir}"


def emit_buffers(plan: Plan, node: str) -> list[str]:
    """``__init__`` lines registering the coupling matrix of a grouped vertex and the permutations of its layouts."""
    g = plan.grouped[node]
    a, out = plan.diagram.out(plan.diagram.operands(node)[0]), plan.diagram.out(node)
    assert isinstance(a, ir.Feature) and isinstance(out, ir.Feature)
    kind = "sparse_coupling" if g.sparse else "coupling"
    recipe = repr(tuple(g.recipe))
    lines = [
        f'self.register_{kind}("{g.matrix}", {g.rows}, {recipe})  # per block: (l1, l2, l3, offset of l2 in b, path '
        "normalization)"
    ]
    layouts = {name: tuple((mul, ir_.dim) for mul, ir_ in f.irreps) for name, f in ((g.layout_a, a), (g.layout_y, out))}
    for name, blocks in layouts.items():
        lines.append(f'self.register_transposition("{name}", {blocks!r})  # ir_mul -> mul_ir')
    if g.fused:  # the kernel reads the dense coupling matrix (see fdg.runtime.channelwise_op.table)
        assert not g.sparse
        op = plan.diagram.op(node)
        assert isinstance(op, ir.Couple)
        what = "the native kernel's table"
        lines += register_channelwise(
            what, g.table, g.matrix, layouts[g.layout_a], layouts[g.layout_y], kernel_blocks(op, g)
        )
    return lines


def register_channelwise(
    what: str,
    table: str,
    matrix: str,
    a_blocks: tuple[tuple[int, int], ...],
    y_blocks: tuple[tuple[int, int], ...],
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
    pair: str | None = None,
) -> list[str]:
    """``__init__`` lines registering a native kernel's table (``FdgModule.register_channelwise``); ``pair``: the
    expression of its pair stage, if paired."""
    return [
        f"self.register_channelwise(  # {what}",
        f'    "{table}",',
        f'    "{matrix}",',
        f"    {a_blocks!r},  # a: (mul, 2l+1) per irrep",
        f"    {y_blocks!r},  # y",
        "    (",
        *(f"        {blk!r}," for blk in blocks),
        "    ),  # per block: (input irrep, output irrep, offsets of its paths' weights)",
        *([f"    {pair},  # the pair stage: a, channel by channel from two inputs"] if pair else []),
        ")",
    ]
