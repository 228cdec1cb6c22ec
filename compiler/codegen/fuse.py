"""Codegen for ``fuse``: the tables it registers in ``__init__`` and its lines of ``forward``.

The lines read as the evaluation the plan chose (``fdg.planning.fuse.planner``): each input in channel layout, the
weights as ``[paths, mul]`` (recoupled when the evaluated tree is not the weights' tree), one product per internal node
of the tree (or one for the folded tensor), the paths weighed for per-row weights, and the result back in ``mul_ir``.
Tables are registered from a :class:`~fdg.runtime.fusion_tables.FuseSpec` literal, so ``__init__`` says what each table
is rather than listing its entries; the runtime rebuilds them exactly on a dtype change.
"""

from __future__ import annotations

import math

from fdg import ir
from fdg.codegen.grouped import register_channelwise
from fdg.codegen.names import Temp
from fdg.planning.fuse.planner import FusePlan
from fdg.planning.plan import Plan
from fdg.runtime.fusion_kernel import kernel_blocks
from fdg.runtime.fusion_paths import FuseSpec
from fdg.runtime.fusion_tables import FuseTable
from fdg.runtime.module import index_of

_RUNTIME = "fdg.runtime.fusion"


def _spec(spec: FuseSpec) -> str:
    inputs = ", ".join(f'"{s}"' for s in spec.inputs)
    lmax = "" if spec.lmax is None else f", lmax={spec.lmax}"
    return f'{_RUNTIME}.FuseSpec(({inputs}), "{spec.outputs}", {spec.tree!r}{lmax})'


def emit_buffers(f: FusePlan) -> list[str]:
    """``__init__`` lines: the spec of the evaluated tree (and of the weights' tree), then every table."""
    spec = f"{f.value}_spec"
    lines = [f"{spec} = {_spec(f.evaluation.spec)}"]
    if f.buffers.recouple is not None:
        lines.append(f"{f.value}_basis = {_spec(f.basis)}  # the tree the weights belong to")
    for b in f.buffers.all:
        table = _table(b.table)
        lines.append(f'self.register_fusion("{b.name}", {f"{f.value}_basis" if b.basis else spec}, {table})')
    if f.buffers.kernel is not None:
        matrix, name = f.buffers.kernel
        paired = f.evaluation.products[-1].paired
        what = "the whole fuse: its left child, paired, and the root" if paired else "the root"
        pair = f"{_RUNTIME}.pair_of({spec}, {f.mul})" if paired else None
        lines += register_channelwise(what, name, matrix, *kernel_blocks(f.evaluation.spec, f.mul), pair)
    return lines


def _table(table: FuseTable) -> str:
    """A :class:`~fdg.runtime.fusion_tables.FuseTable` literal naming only what differs from the defaults."""
    defaults = FuseTable._field_defaults
    parts = [f'"{table.part}"'] + [f"{k}={v!r}" for k, v in table._asdict().items() if k != "part" and v != defaults[k]]
    return f"{_RUNTIME}.FuseTable({', '.join(parts)})"


def emit_call(
    plan: Plan,
    node: str,
    args: list[str],
    temp: Temp,
    gathers: list[str] | None = None,
    scatter: list[str] | None = None,
) -> list[str]:
    """The lines of ``forward`` computing a fuse vertex.  On a paired kernel with fused index access
    (``plan.indexed``), the kernel reads the gathered inputs in place and sums by the scatter's index; the fallback
    runs the absorbed gathers (lines ``gathers``) and scatter-sum (lines ``scatter``) around the torch form."""
    f = plan.fusions[node]
    op = plan.diagram.op(node)
    assert isinstance(op, ir.Fuse)
    ev, c = f.evaluation, f.choice
    lines = [f"# evaluates {c.evaluates}; {c.paths} paths, weights on the paths of {c.basis} (fdg report: why)"]
    paired = ev.products[-1].paired
    n = len(f.muls)
    w = _weights(plan, node, args[n:], temp, lines) if paired else None
    body = lines  # where the torch form goes: in the fallback branch once the kernel computes the whole fuse
    if paired:
        assert w is not None
        lines += _kernel_call(plan, node, args, w)
        body = [*(gathers or [])]
    values: dict[int, str] = {}
    for k in range(n):
        values[k] = temp(f"x{k}")
        dims = list(f.inputs[k])
        body.append(
            f"{values[k]} = {_RUNTIME}.channels({args[k]}, {f.muls[k]}, {dims})  # [n, {f.muls[k]}, {sum(dims)}]"
        )
    if not paired:
        w = _weights(plan, node, args[n:], temp, body)
    result = ""
    for k, p in enumerate(ev.products):
        if p.kernel and not paired:
            assert w is not None
            lines += _kernel_call(plan, node, [values[p.operands[0]], values[p.operands[1]]], w)
            body = []  # the fallback, indented under its else: below
        order = p.order or tuple(range(len(p.operands)))
        call = _product(f, k, "[" + ", ".join(values[p.operands[o]] for o in order) + "]", w, temp, body)
        result = temp("folded" if ev.folded else f"n{n + k}")
        values[n + k] = result  # the value of internal node n + k
        body.append(f"# {p.label}: [n, {p.channels}, {p.columns}]")
        body.append(f"{result} = {_RUNTIME}.{call}")
    if op.weights.kind in ("input", "per_index"):
        assert f.buffers.columns is not None and w is not None
        out = sum(f.out_dims)
        weighed = temp("paths")
        body.append(f"{weighed} = {_RUNTIME}.weigh_paths({result}, {w}, self.{index_of(f.buffers.columns)}, {out})")
        result = weighed
    body.append(f"{plan.names[node]} = {_RUNTIME}.mul_ir({result}, {list(f.out_dims)})")
    body += scatter or []
    if body is not lines:
        lines += [f"    {line}" for line in body]
    return lines


def _kernel_call(plan: Plan, node: str, operands: list[str], w: str) -> list[str]:
    """The root on the native kernel where it runs (``fdg.runtime.fusion_kernel``), up to the ``else:`` of the
    fallback.  ``operands``: the root's left child and right child in channel layout, or paired, the fuse's
    arguments (the inputs as they are, read through the gathers' indices where ``plan.indexed`` says so)."""
    f = plan.fusions[node]
    assert f.buffers.kernel is not None
    matrix, table = f.buffers.kernel
    x_blocks, y_blocks, blocks = kernel_blocks(f.evaluation.spec, f.mul)
    left_dims = [d for _, d in x_blocks]
    paths = f.choice.paths
    columns = sum(y_blocks[o][1] * len(offsets) * x_blocks[e][1] for e, o, offsets in blocks)  # of the matrix
    result = plan.names[node]
    paired = f.evaluation.products[-1].paired
    if paired:
        x_size = f.mul * sum(f.inputs[0])
        x, z, right = operands[:3]
        extra, what = [], "the whole fuse as one native kernel call"
        ix = plan.indexed.get(node)
        if ix is not None:
            d = plan.diagram
            for k, gather in enumerate(ix.gathers):
                if gather is not None:
                    value, index = (plan.names[n] for n in d.operands(gather))
                    x, z = (value, z) if k == 0 else (x, value)
                    extra.append(f"{'xz'[k]}_index={index}")
            if ix.scatter is not None:
                out = d.out(ix.scatter)
                assert isinstance(out, ir.Feature)
                result = plan.names[ix.scatter]
                extra += [f"y_index={plan.names[d.operands(ix.scatter)[1]]}", f"y_rows={plan.sizes[out.axis.name]}"]
            what += ", indices read in place"
        first, matrix_of = x, f"{right} @ self.{matrix}"
        tail = [f"        z={z},", *(f"        {e}," for e in extra)]
    else:
        x_size = f.mul * sum(left_dims)
        first = operands[0]
        matrix_of, tail, what = (
            f"{operands[1]}.squeeze(1) @ self.{matrix}",
            [],
            "the root, weighed, as one native kernel call",
        )
    sizes = [x_size, columns, paths * f.mul, f.mul * sum(f.out_dims)]
    return [
        f"if fdg.runtime.channelwise_available({first}):  # {what}",
        f"    {result} = fdg.runtime.channelwise(",
        f"        {first if paired else f'{_RUNTIME}.mul_ir({first}, {left_dims})'},",
        f"        {matrix_of},",
        f"        {w}.reshape({w}.shape[0], {paths * f.mul}),",
        f"        self.{table},",
        f"        [{', '.join(map(str, sizes))}],",
        *tail,
        "    )",
        "else:",
    ]


def _product(f: FusePlan, k: int, operands: str, w: str | None, temp: Temp, lines: list[str]) -> str:
    """The runtime call of product ``k`` (after the lines folding shared weights into its table, where it has them)."""
    p = f.evaluation.products[k]
    table = f.buffers.tables[k]
    split = ", split_last=True" if p.split else ""
    if p.weights == "shared":
        assert w is not None
        per_channel = temp(f"t{k}")
        width = math.prod(p.dims)
        size = p.nnz if p.sparse else width * p.columns
        fold = f"{_RUNTIME}.fold_weights({w}, self.{index_of(table)}, self.{table}, {size})"
        lines.append(f"{per_channel} = {fold}" + ("" if p.sparse else f".reshape({f.mul}, {width}, {p.columns})"))
        if p.sparse:
            return f"sparse_product({operands}, self.{index_of(f.buffers.unions[k])}, {per_channel}, {p.columns})"
        return f"dense_product({operands}, {per_channel}{split})"
    if p.sparse:
        return f"sparse_product({operands}, self.{index_of(table)}, self.{table}, {p.columns})"
    return f"dense_product({operands}, self.{table}{split})"


def _weights(plan: Plan, node: str, extra: list[str], temp: Temp, lines: list[str]) -> str | None:
    """The weights as ``[paths, mul]`` (learned) or ``[n, paths, mul]`` (per row), recoupled to the evaluated tree
    where it is not the weights' own; None without weights.  ``extra``: the operands after the inputs."""
    f = plan.fusions[node]
    op = plan.diagram.op(node)
    assert isinstance(op, ir.Fuse)
    paths = f.choice.paths
    if op.weights.kind == "none":
        return None
    w = temp("w")
    if op.weights.kind == "learned":
        lines.append(f"{w} = self.{plan.parameters[node].name}.view({paths}, {f.mul})")
    elif op.weights.kind == "per_index":
        table = f"self.{plan.parameters[node].name}.index_select(0, {extra[0]})"
        lines.append(f"{w} = {table}.view(-1, {paths}, {f.mul})  # one weight set per {op.weights.source}")
    else:
        lines.append(f"{w} = {extra[0]}.reshape(-1, {paths}, {f.mul})")
    if f.buffers.recouple is not None:
        r, how = f.buffers.recouple, f.choice.evaluates
        lines.append(f"{w} = {_RUNTIME}.recouple({w}, self.{index_of(r)}, self.{r}, {paths})  # as weights of {how}")
    return w
