"""The steps of each vertex, priced by the cost model: the chosen lowering, the alternatives, and the naive baseline.

The *naive baseline* is what a straightforward implementation does: one einsum per path with the dense CG tensor,
contracted left to right in the order ``a, b, CG, weights`` (so the outer product of ``a`` and ``b`` is formed
first).  The *dense* lowering is one einsum per path in opt_einsum's optimal pairwise order; the *grouped* lowering
is described in ``grouping.py``.  All three compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fdg import ir
from fdg.cost import ELEMENT, Step, contraction
from fdg.planning.grouping import Grouped, kernel_blocks
from fdg.runtime.channelwise_op import Pair, layout, work
from fdg.runtime.grouped import column_support

if TYPE_CHECKING:
    from fdg.planning.einsum import Contraction


def _dims(c: Contraction, op: ir.Couple | ir.Linear, operands: list[ir.Feature]) -> dict[str, int]:
    if isinstance(op, ir.Linear):
        (x,) = operands
        mul, ir_ = x.irreps[c.i_in[0]]
        return {"z": 1, "u": mul, "w": op.irreps_out[c.i_out].mul, "i": ir_.dim}
    a, b = operands
    (m1, ir1), (m2, ir2), (m3, ir3) = a.irreps[c.i_in[0]], b.irreps[c.i_in[1]], op.irreps_out[c.i_out]
    return {"z": 1, "u": m1, "v": m2, "w": m3, "i": ir1.dim, "j": ir2.dim, "k": ir3.dim}


def _grads(roles: list[str], learned: bool) -> list[int]:
    """Per operand role, 1 when its gradient is computed (data and weights, never CG)."""
    return [0 if role == "cg" or (role == "w" and not learned) else 1 for role in roles]


def dense(
    value: str, op: ir.Couple | ir.Linear, operands: list[ir.Feature], contractions: tuple[Contraction, ...], axis: str
) -> tuple[Step, ...]:
    """One einsum per path in the planned pairwise order, plus the sum of paths into each output irrep."""
    steps = []
    for c in contractions:
        dims = _dims(c, op, operands)
        live = list(c.roles)
        for p in c.steps:
            left, right = live[p.left], live[p.right]
            grads = sum(_grads([left, right], op.weights.kind != "none"))
            steps.append(contraction(value, p.spec, dims, grads, axis=axis))
            live = [r for n, r in enumerate(live) if n not in (p.left, p.right)] + ["x"]
    return (*steps, _assemble(value, op, axis))


def baseline(
    value: str, op: ir.Couple | ir.Linear, operands: list[ir.Feature], contractions: tuple[Contraction, ...], axis: str
) -> tuple[Step, ...]:
    """Dense CG, left to right: ``((a b) CG) w`` per path."""
    steps = []
    for c in contractions:
        dims = _dims(c, op, operands)
        terms, output = c.spec.split("->")
        live = list(zip(c.roles, terms.split(","), strict=True))
        while len(live) > 1:
            (r1, t1), (r2, t2) = live[0], live[1]
            rest = "".join(t for _, t in live[2:])
            result = output if len(live) == 2 else "".join(x for x in dict.fromkeys(t1 + t2) if x in rest + output)
            grads = sum(_grads([r1, r2], op.weights.kind != "none"))
            steps.append(contraction(value, f"{t1},{t2}->{result}", dims, grads, axis=axis))
            live = [("x", result), *live[2:]]
    return (*steps, _assemble(value, op, axis))


def _assemble(value: str, op: ir.Couple | ir.Linear, axis: str) -> Step:
    """Summing paths into their output irrep and concatenating the output blocks."""
    dim = op.irreps_out.dim
    adds = sum(op.irreps_out[p.i_out].mul * op.irreps_out[p.i_out].ir.dim for p in op.paths) - dim
    return Step(
        value,
        f"sum paths, cat -> [{dim}]",
        "elementwise",
        axis,
        max(adds, 0),
        2 * ELEMENT * dim,
        dim,
        max(adds, 0),
        2 * ELEMENT * dim,
        launches=len(op.irreps_out),
    )


def grouped(value: str, op: ir.Couple, a: ir.Feature, g: Grouped, axis: str) -> tuple[Step, ...]:
    """The grouped lowering: coupling matrices of ``b``, ``a`` to ``ir_mul``, the blocks, the result to ``mul_ir``;
    or, fused, the coupling matrices and one native kernel call."""
    cols = g.matrix_columns
    if g.sparse:  # gather b's entries, scale by the non-zeros, add into their columns
        nnz = g.nonzeros
        coupling = Step(value, f"b @ K sparse [{g.rows}x{cols}, {nnz} non-zeros]", "sparse", axis, 2 * nnz,
                        ELEMENT * (g.rows + 2 * nnz + cols), cols, 2 * nnz, ELEMENT * (g.rows + 2 * nnz + cols),
                        launches=3, chunk=g.chunk)  # fmt: skip
    else:  # the kernel takes the whole batch at once: so does its coupling matrix
        chunk = 0 if g.fused else g.chunk
        coupling = Step(value, f"b @ K [{g.rows}x{cols}]", "mm", axis, 2 * g.rows * cols, ELEMENT * (g.rows + cols),
                        cols, 2 * g.rows * cols, ELEMENT * (g.rows + cols), chunk=chunk)  # fmt: skip
    if g.fused:
        return coupling, _kernel(value, op, a, g, axis, cols)
    # a in ir_mul layout ([2l+1, mul] per irrep), by one gather; its gradient goes back by the inverse gather
    reorder = Step(value, f"gather a -> ir_mul [{g.columns}]", "gather", axis, 0, 2 * ELEMENT * g.columns, g.columns, 0,
                   2 * ELEMENT * g.columns, chunk=g.chunk)  # fmt: skip
    steps = [coupling, reorder]
    steps += _uvw(value, op, g, axis) if g.mode == "uvw" else _uvu(value, op, g, axis)
    dim = op.irreps_out.dim
    # the output blocks concatenated, then back to mul_ir by one gather
    steps.append(Step(value, f"cat, gather -> mul_ir [{dim}]", "gather", axis, 0, 4 * ELEMENT * dim, dim, 0,
                      2 * ELEMENT * dim, launches=2, chunk=g.chunk))  # fmt: skip
    return tuple(steps)


def _kernel(value: str, op: ir.Couple, a: ir.Feature, g: Grouped, axis: str, cols: int) -> Step:
    """The couple's native kernel call (:func:`native_call`)."""
    weights = op.weights.numel if op.weights.kind in ("input", "per_index") else 0
    blocks = (tuple((m, r.dim) for m, r in a.irreps), tuple((m, r.dim) for m, r in op.irreps_out))
    return native_call(value, axis, *blocks, kernel_blocks(op, g), column_support(g.recipe), weights, len(op.paths))


def native_call(
    value: str,
    axis: str,
    x_blocks: tuple[tuple[int, int], ...],
    y_blocks: tuple[tuple[int, int], ...],
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
    nonzero: Sequence[bool],
    weights: int,
    paths: int,
    pair: Pair | None = None,
) -> Step:
    """One call of the native kernel (``fdg.runtime.channelwise``) on the layout of
    :func:`fdg.runtime.channelwise_op.layout`: a multiply-add on every channel per structural non-zero of the coupling
    matrix and per output component of a path (its weights; ``work``); reads ``x`` (and ``z`` with a ``pair``), the
    coupling matrices and ``weights`` per-row weights, writes the result.  The backward is three such calls (the
    gradients of ``x``, of the coupling matrices and of the weights), each about the forward's work; paired, one
    pass for those three and one for ``z``'s, each through the gradient of the pair stage."""
    multiply_adds, entries = work(layout(x_blocks, y_blocks, blocks, nonzero))
    flops = 2 * multiply_adds
    x, y = (sum(m * d for m, d in b) for b in (x_blocks, y_blocks))
    what = f"native kernel [{entries} non-zeros, {paths} paths]"
    if pair is None:
        moved = ELEMENT * (x + len(nonzero) + weights + y)
        return Step(value, what, "native", axis, flops, moved, y, 3 * flops, 3 * moved)
    stage = 4 * x_blocks[0][0] * len(pair.entries)  # the pair stage: two multiply-adds per channel and pair
    x = sum(m * d for m, d in pair.x_blocks + pair.z_blocks)
    moved = ELEMENT * (x + len(nonzero) + weights + y)
    what = f"native kernel [sparse 5-linear: {len(pair.entries)} pairs, {entries} non-zeros, {paths} paths]"
    return Step(value, what, "native", axis, flops + stage, moved, y, 4 * flops + 3 * stage, 4 * moved)


def _uvw(value: str, op: ir.Couple, g: Grouped, axis: str) -> list[Step]:
    """Per input irrep one bmm of the stacked coupling matrices with ``a``; per output irrep the paths' results side by
    side (a copy when there are several) times the stacked ``[u, w]`` weights, one large matmul."""
    steps = []
    for i in sorted({blk.i_in for blk in g.blocks}):
        blocks = [blk for blk in g.blocks if blk.i_in == i]
        rows, d_in, mul = sum(blk.d_out for blk in blocks), blocks[0].d_in, blocks[0].mul
        flops, io = 2 * rows * d_in * mul, ELEMENT * (d_in + rows) * mul
        steps.append(Step(value, f"bmm [{rows}x{d_in}] @ a{i} [{d_in}x{mul}]", "grouped", axis, flops, io, rows * mul,
                          2 * flops, 2 * io, chunk=g.chunk))  # fmt: skip
    for o, (w_mul, ir_out) in enumerate(op.irreps_out):
        blocks = [blk for blk in g.blocks if blk.i_out == o]
        if not blocks:
            continue
        width = sum(blk.mul for blk in blocks)
        flops = 2 * ir_out.dim * width * w_mul
        # the weights are not per row: only the paths' results (copied side by side when several) and y move
        io = ELEMENT * ir_out.dim * ((2 if len(blocks) > 1 else 1) * width + w_mul)
        steps.append(Step(value, f"[{ir_out.dim}x{width}] @ w [{width}x{w_mul}] -> y{o}", "mm", axis, flops, io,
                          ir_out.dim * w_mul, 2 * flops, 2 * io, launches=2, chunk=g.chunk))  # fmt: skip
    return steps


def _uvu(value: str, op: ir.Couple, g: Grouped, axis: str) -> list[Step]:
    """Per block the weights times the channels of ``a`` (or times the result) and one bmm."""
    per_row = op.weights.kind in ("input", "per_index")
    steps = []
    for blk in g.blocks:
        # products with the weights: on the channels of a (width x mul), or on the matmul's result (d_out x mul)
        xw = (blk.d_out if blk.weights_after else blk.width) * blk.mul
        mm = 2 * blk.columns * blk.mul
        io = ELEMENT * (blk.d_in * blk.mul + (len(blk.paths) * blk.mul if per_row else 0) + blk.d_out * blk.mul)
        kernel = (
            f"(bmm [{blk.d_out}x{blk.width}] @ a{blk.i_in}) * w"
            if blk.weights_after
            else (f"bmm [{blk.d_out}x{blk.width}] @ [{blk.width}x{blk.mul}] <- w * a{blk.i_in}")
        )
        steps.append(
            Step(
                value,
                kernel,
                "grouped",
                axis,
                xw + mm,
                io,
                blk.d_out * blk.mul + xw,
                2 * xw + 2 * mm,
                2 * io,
                launches=2,
                chunk=g.chunk,
            )
        )
    return steps


def simple(value: str, op: ir.Vertex, out: ir.Feature, operands: list[ir.WireType]) -> tuple[Step, ...]:
    """Steps of the vertices that are not contractions: sh, gather, scatter-sum, add, scale."""
    dim, axis, e = out.irreps.dim, out.axis.name, ELEMENT
    match op:
        case ir.SphericalHarmonics(lmax=lmax):
            # the CG recursion: one (l-1) x 1 -> l coupling per degree, dense over its small table
            flops = sum(2 * (2 * l - 1) * 3 * (2 * l + 1) for l in range(2, lmax + 1)) + 3
            io = e * (3 + dim)
            what = f"sh(lmax={lmax})"
            return (Step(value, what, "elementwise", axis, flops, io, dim, 2 * flops, 2 * io, launches=2 * lmax),)
        case ir.Gather():
            return (Step(value, f"index_select [{dim}]", "gather", axis, 0, 2 * e * dim, dim, dim, 3 * e * dim),)
        case ir.ScatterSum():
            source = operands[0]
            assert isinstance(source, ir.Feature)
            # priced per row of the source axis: one add per element scattered
            rows = source.axis.name
            return (Step(value, f"index_add [{dim}]", "scatter", rows, dim, 3 * e * dim, 0, 0, 2 * e * dim),)
        case ir.Add():
            k = len(operands)
            io = (k + 1) * e * dim
            return (Step(value, f"add x{k} [{dim}]", "elementwise", axis, (k - 1) * dim, io, dim, 0, io),)
        case ir.Scale():
            return (Step(value, f"scale [{dim}]", "elementwise", axis, dim, 2 * e * dim, dim, dim, 2 * e * dim),)
        case ir.Activation():
            return (Step(value, f"{op.function} [{dim}]", "elementwise", axis, 4 * dim, 2 * e * dim, dim, 8 * dim,
                         3 * e * dim),)  # fmt: skip
        case ir.Radial(kind=kind):
            return (Step(value, f"{kind} [{dim}]", "elementwise", axis, 8 * dim, 2 * e * (dim + 3), dim, 16 * dim,
                         3 * e * (dim + 3)),)  # fmt: skip
        case ir.NormActivation():  # the squared norms, the function of each, one product per component
            return (Step(value, f"norm {op.function} [{dim}]", "elementwise", axis, 4 * dim, 2 * e * dim, dim, 8 * dim,
                         3 * e * dim),)  # fmt: skip
        case ir.Gate():
            return (Step(value, f"gate [{dim}]", "elementwise", axis, dim, 3 * e * dim, dim, 2 * dim, 4 * e * dim),)
        case ir.Cat():
            return (Step(value, f"cat [{dim}]", "elementwise", axis, 0, 2 * e * dim, dim, 0, 2 * e * dim),)
        case ir.Select():
            return ()  # a view of its input
        case ir.Sort():
            return (Step(value, f"sort blocks [{dim}]", "elementwise", axis, 0, 2 * e * dim, dim, 0, 2 * e * dim),)
    raise AssertionError(f"no steps for {op!r}")
