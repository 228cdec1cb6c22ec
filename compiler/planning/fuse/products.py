"""Pricing of a ``fuse`` evaluation: its products (dense or sparse, with the weights folded in or not) and the
steps around them, in the terms of ``fdg.cost`` (per row of the vertex's axis, forward and backward).

A product of operands ``[n, channels, d_k]`` with a table of ``rows = prod d_k`` rows and ``columns`` columns costs

* dense: the outer product (``channels * rows`` products) and one matmul, ``2 * channels * rows * columns`` FLOPs
  at the matmul rate; a per-channel table (learned weights folded in) is a batched matmul over the channels;
* sparse: per non-zero of the table, one product per further operand, one by the value and one addition, at the
  rate of gathers; its gathered terms are what autograd keeps.

Which is cheaper depends on the table's density: a node coupling two ``0e+1o+2e`` channels keeps 244 of its
``81 x 81`` entries, the folded tensor of the SPEC's FusionBlock 769 of ``729 x 9`` per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from fdg import cost
from fdg.cost import ELEMENT, Step
from fdg.cost.steps import native_call
from fdg.runtime.fusion_kernel import kernel_blocks, kernel_pair
from fdg.runtime.fusion_paths import FuseSpec, fuse_layout
from fdg.runtime.fusion_tables import FuseTable, Sparse, fusion_values, node_table, sparse_weights

#: largest dense table priced (entries); beyond, only the sparse form is a candidate
MAX_DENSE = 1 << 24


def weights_mode(kind: str) -> str:
    """How a fuse's weights meet its root product: ``shared`` (learned: folded into the table per channel), ``sum``
    (none: the paths are added) or ``rows`` (per row or per index: one block per path, weighed afterwards)."""
    return {"learned": "shared", "none": "sum"}.get(kind, "rows")


@dataclass(frozen=True)
class Product:
    """One product of an evaluation: its operands' stacked values times a constant (or per-channel) table."""

    part: FuseTable  # the product's table ("node", "root" or "folded"), before its layout
    operands: tuple[int, ...]  # layout nodes: input positions for leaves, else earlier products' nodes
    label: str  # the subtree it computes, spelled
    channels: int
    dims: tuple[int, ...]  # components of one channel of each operand
    columns: int  # of the result
    nnz: int  # non-zeros multiplied (sparse), or rows of the folded weights (shared)
    sparse: bool
    weights: str  # "" (an inner node), "shared" (learned weights folded in), "rows" (a block per path), "sum"
    steps: tuple[Step, ...]
    order: tuple[int, ...] = ()  # dense: the operands' order in the table (empty: as given)
    split: bool = False  # dense: the last operand contracted after the matmul (fdg.runtime.fusion.dense_product)
    # the root with per-row weights as one native kernel call where it runs (fdg.runtime.fusion_kernel); this
    # product's own form, the weighing and mul_ir elsewhere, as without
    kernel: bool = False
    # the kernel also computes the root's left child from two inputs (a paired table); that child's product, with no
    # steps of its own, is computed only where the kernel does not run
    paired: bool = False

    @property
    def table(self) -> FuseTable:
        """The table the generated module registers for this product."""
        return self.part._replace(
            summed=self.weights == "sum", order=self.order, sparse=self.sparse, weights=self.weights == "shared"
        )


@dataclass(frozen=True)
class Evaluation:
    """One way to compute a fuse: the tree it evaluates (or folded) and its products, in order."""

    spec: FuseSpec  # the evaluated tree (folded: the basis)
    folded: bool
    recouple: int  # non-zeros of the recoupling matrix; 0: the weights are used as they are
    products: tuple[Product, ...]
    steps: tuple[Step, ...]


def seconds(steps: tuple[Step, ...], rows: int) -> float:
    """Estimated forward + backward time of some steps with ``rows`` rows on every axis."""
    return sum(cost.seconds(s, {s.axis: rows}) for s in steps)


def price_product(
    value: str,
    spec: FuseSpec,
    part: FuseTable,
    operands: tuple[int, ...],
    label: str,
    chans: tuple[int, ...],
    table: Sparse,
    weights: str,
    axis: str,
    rows: int,
    form: str | None = None,
) -> Product:
    """The cheapest product with ``table``: dense (the outer product of every operand, or ``split``: all but one,
    each in turn, and that one after the matmul) or sparse; only sparse when dense is too large.  ``form``
    (``"dense"``, ``"split"``, ``"sparse"``) keeps only that kind, for tests and benchmarks."""
    dims = table.shape[:-1]
    channels = max(chans)
    width = math.prod(dims)
    columns = fuse_layout(spec).out_dim if weights == "shared" else table.shape[-1]
    entries = table.values.numel()
    options = []
    if width * columns * (channels if weights == "shared" else 1) <= MAX_DENSE:
        # the outer product of every operand, or all but one (each in turn last) and that one after the matmul
        for last in (None, *reversed(range(len(dims)))):  # ties: the natural order
            order = () if last is None else (*(k for k in range(len(dims)) if k != last), last)
            ordered = order or tuple(range(len(dims)))
            shapes = tuple((chans[k], dims[k]) for k in ordered)
            steps = _dense(value, label, channels, shapes, columns, weights, entries, axis, split=last is not None)
            if order == tuple(range(len(dims))):
                order = ()
            product = Product(part, operands, label, channels, dims, columns, entries, False, weights, steps, order)
            options.append(replace(product, split=last is not None))
    nnz = sparse_weights(spec, table)[0].shape[1] if weights == "shared" else entries
    steps = _sparse(value, label, chans, dims, columns, nnz, weights, entries, axis)
    options.append(Product(part, operands, label, channels, dims, columns, nnz, True, weights, steps))
    if form is not None:
        wanted = {"dense": (False, False), "split": (False, True), "sparse": (True, False)}[form]
        options = [p for p in options if (p.sparse, p.split) == wanted]
    return min(options, key=lambda p: seconds(p.steps, rows))


def kernel_root(value: str, spec: FuseSpec, product: Product, mul: int, axis: str, paired: bool = False) -> Product:
    """``product``, the root of ``spec`` with per-row weights and a right child without channels, priced as the
    native kernel: the left child to ``mul_ir``, the coupling matrices ``Y @ K``, one kernel call that also weighs
    and adds the paths (what the other forms leave to ``weigh_paths`` and ``mul_ir``).  ``paired``: the left child
    couples two inputs and the kernel computes it too, reading the inputs as they are (no left child, no
    ``mul_ir``)."""
    x_blocks, y_blocks, blocks = kernel_blocks(spec, mul)
    matrix = fusion_values(spec, FuseTable("kernel"), torch.float64)
    rows, cols = matrix.shape
    x = sum(m * d for m, d in x_blocks)
    coupling = Step(value, f"{product.label}: Y @ K [{rows}x{cols}]", "mm", axis, 2 * rows * cols,
                    ELEMENT * (rows + cols), cols, 2 * rows * cols, ELEMENT * (rows + cols))  # fmt: skip
    paths = len(fuse_layout(spec).paths)
    nonzero = (matrix != 0).any(0).tolist()
    pair = kernel_pair(spec, mul, node_table(spec, fuse_layout(spec).nodes[-1].left)) if paired else None
    call = native_call(value, axis, x_blocks, y_blocks, blocks, nonzero, paths * mul, paths, pair)
    if paired:
        return replace(product, kernel=True, paired=True, steps=(coupling, call))
    to_mul_ir = Step(value, f"{product.label}: left child -> mul_ir [{x}]", "elementwise", axis, 0,
                     2 * ELEMENT * x, x, 0, 2 * ELEMENT * x)  # fmt: skip
    return replace(product, kernel=True, steps=(to_mul_ir, coupling, call))


def _fold(value: str, channels: int, entries: int, size: int) -> Step:
    """Learned weights folded into a per-channel table once per call (batch independent)."""
    return Step(value, f"fold weights [{entries} entries] -> [{channels}, {size}]", "elementwise", "",
                2 * entries * channels, ELEMENT * channels * (2 * entries + size), channels * size,
                2 * entries * channels, ELEMENT * channels * (2 * entries + size), launches=3)  # fmt: skip


def _dense(
    value: str,
    label: str,
    channels: int,
    shapes: tuple[tuple[int, int], ...],
    columns: int,
    weights: str,
    entries: int,
    axis: str,
    split: bool,
) -> tuple[Step, ...]:
    """``shapes``: (channels, components) of each operand, in the table's order."""
    dims = [d for _, d in shapes]
    width = math.prod(dims)
    # the outer product of the operands (all but the last when split): per channel only if one of them has channels
    outer_channels = max(c for c, _ in (shapes[:-1] if split else shapes))
    outer = width // dims[-1] if split else width
    inner = dims[-1] * columns if split else columns
    flops = outer_channels * outer if len(dims) > 1 + split else 0
    flops += 2 * channels * outer * inner + (2 * channels * inner if split else 0)  # the matmul, the last operand
    # a per-channel table against a per-channel outer product is a matmul batched over channels (one more copy)
    copies = 3 if weights == "shared" and outer_channels > 1 else 2
    inputs = sum(c * d for c, d in shapes)
    moved = ELEMENT * (inputs + copies * outer_channels * outer + 2 * channels * inner + channels * columns)
    # backward: the operands' gradients, and for folded weights the table's (one more matmul)
    back = 2 if weights == "shared" else 1
    kind = "per-channel " if weights == "shared" else ""
    shape = f"[{outer}x{dims[-1]}x{columns}], last operand after" if split else f"[{width}x{columns}]"
    what = f"{label}: outer @ {kind}table {shape}"
    kept = outer_channels * outer + channels * (inner + columns)
    product = Step(value, what, "mm", axis, flops, moved, kept, back * flops, back * moved, launches=len(dims) + split)
    if weights == "shared":
        return (_fold(value, channels, entries, width * columns), product)
    return (product,)


def _sparse(
    value: str,
    label: str,
    chans: tuple[int, ...],
    dims: tuple[int, ...],
    columns: int,
    nnz: int,
    weights: str,
    entries: int,
    axis: str,
) -> tuple[Step, ...]:
    k = len(dims)
    channels = max(chans)
    flops = channels * nnz * (k + 1)  # k - 1 products between operands, one by the value, one addition
    inputs = sum(c * d for c, d in zip(chans, dims, strict=True))
    moved = ELEMENT * (inputs + channels * ((k + 1) * nnz + columns))
    back = 2 if weights == "shared" else 1
    kind = "per-channel " if weights == "shared" else ""
    what = f"{label}: sparse {kind}table [{nnz} non-zeros]"
    kept = channels * (k * nnz + columns)
    product = Step(value, what, "sparse", axis, flops, moved, kept, (1 + back) * flops, (1 + back) * moved, 2 * k + 1)
    if weights == "shared":
        return (_fold(value, channels, entries, nnz), product)
    return (product,)


def evaluation_steps(
    value: str,
    spec: FuseSpec,
    muls: tuple[int, ...],
    kind: str,
    recouple: int,
    products: tuple[Product, ...],
    axis: str,
) -> tuple[Step, ...]:
    """All steps of an evaluation: channels in, weights prepared, the products, paths weighed, ``mul_ir`` out."""
    layout = fuse_layout(spec)
    mul = max(muls)
    paths = len(layout.paths)
    steps = []
    for k, m in enumerate(() if products[-1].paired else muls):  # paired: the kernel reads the inputs as they are
        d = layout.nodes[k].dim
        steps.append(Step(value, f"channels of input {k} -> [{m}, {d}]", "elementwise", axis, 0,
                          2 * ELEMENT * m * d, m * d, 0, 2 * ELEMENT * m * d))  # fmt: skip
    per_row = kind in ("input", "per_index")
    if kind == "per_index":
        steps.append(Step(value, f"index_select weights [{paths * mul}]", "gather", axis, 0,
                          2 * ELEMENT * paths * mul, paths * mul, paths * mul, 3 * ELEMENT * paths * mul))  # fmt: skip
    if recouple:
        where = axis if per_row else ""
        steps.append(Step(value, f"recouple weights [{recouple} non-zeros]", "sparse", where, 3 * recouple * mul,
                          ELEMENT * mul * (2 * paths + 3 * recouple), paths * mul, 6 * recouple * mul,
                          2 * ELEMENT * mul * (2 * paths + 3 * recouple), launches=3))  # fmt: skip
    for p in products:
        steps.extend(p.steps)
    if products[-1].kernel:  # the kernel weighs the paths and writes mul_ir
        return tuple(steps)
    if per_row:
        root = layout.root_dim
        steps.append(Step(value, f"weigh {paths} paths, sum -> [{mul}, {layout.out_dim}]", "elementwise", axis,
                          2 * mul * root, ELEMENT * mul * (3 * root + paths + layout.out_dim), mul * root,
                          4 * mul * root, 2 * ELEMENT * mul * (3 * root + paths)))  # fmt: skip
    dim = mul * layout.out_dim
    steps.append(Step(value, f"mul_ir -> [{dim}]", "elementwise", axis, 0, 2 * ELEMENT * dim, dim, 0,
                      2 * ELEMENT * dim))  # fmt: skip
    return tuple(steps)
