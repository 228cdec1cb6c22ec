"""Pricing of a ``fuse`` evaluation: its products (dense or sparse, with the weights folded in or not) and the
steps around them, in the terms of ``cost.py`` (per row of the vertex's axis, forward and backward).

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
from dataclasses import dataclass

from fdg import cost
from fdg.cost import ELEMENT, Step
from fdg.runtime.fusion_tables import FuseSpec, Sparse, fuse_layout, sparse_weights

#: largest dense table priced (entries); beyond, only the sparse form is a candidate
MAX_DENSE = 1 << 24


@dataclass(frozen=True)
class Product:
    """One product of an evaluation: its operands' stacked values times a constant (or per-channel) table."""

    part: str  # the table: "node{J}", "root" or "folded" (fdg.runtime.fusion_tables.fusion_table)
    operands: tuple[int, ...]  # layout nodes: input positions for leaves, else earlier products' nodes
    label: str  # the subtree it computes, spelled
    channels: int
    dims: tuple[int, ...]  # components of one channel of each operand
    columns: int  # of the result
    nnz: int  # non-zeros multiplied (sparse), or rows of the folded weights (shared)
    sparse: bool
    weights: str  # "" (an inner node), "shared" (learned weights folded in), "rows" (a block per path), "sum"
    steps: tuple[Step, ...]


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
    part: str,
    operands: tuple[int, ...],
    label: str,
    channels: int,
    table: Sparse,
    weights: str,
    axis: str,
    rows: int,
) -> Product:
    """The cheaper of the dense and the sparse product with ``table`` (only sparse when dense is too large)."""
    dims = table.shape[:-1]
    width = math.prod(dims)
    columns = fuse_layout(spec).out_dim if weights == "shared" else table.shape[-1]
    entries = table.values.numel()
    options = []
    if width * columns * (channels if weights == "shared" else 1) <= MAX_DENSE:
        steps = _dense(value, label, channels, dims, columns, weights, entries, axis)
        options.append(Product(part, operands, label, channels, dims, columns, entries, False, weights, steps))
    nnz = sparse_weights(spec, table)[0].shape[1] if weights == "shared" else entries
    steps = _sparse(value, label, channels, dims, columns, nnz, weights, entries, axis)
    options.append(Product(part, operands, label, channels, dims, columns, nnz, True, weights, steps))
    return min(options, key=lambda p: seconds(p.steps, rows))


def _fold(value: str, channels: int, entries: int, size: int) -> Step:
    """Learned weights folded into a per-channel table once per call (batch independent)."""
    return Step(value, f"fold weights [{entries} entries] -> [{channels}, {size}]", "elementwise", "",
                2 * entries * channels, ELEMENT * channels * (2 * entries + size), channels * size,
                2 * entries * channels, ELEMENT * channels * (2 * entries + size), launches=3)  # fmt: skip


def _dense(
    value: str, label: str, channels: int, dims: tuple[int, ...], columns: int, weights: str, entries: int, axis: str
) -> tuple[Step, ...]:
    width = math.prod(dims)
    outer = channels * (width - dims[0]) if len(dims) > 1 else 0
    flops = outer + 2 * channels * width * columns
    # the outer product is written and read, a per-channel table makes the matmul batched over channels (a copy)
    moved = ELEMENT * channels * (sum(dims) + (3 if weights == "shared" else 2) * width + columns)
    # backward: the operands' gradients, and for folded weights the table's (one more matmul)
    back = 2 if weights == "shared" else 1
    kind = "per-channel " if weights == "shared" else ""
    product = Step(value, f"{label}: outer @ {kind}table [{width}x{columns}]", "mm", axis, flops, moved,
                   channels * (width + columns), back * flops, back * moved, launches=len(dims))  # fmt: skip
    if weights == "shared":
        return (_fold(value, channels, entries, width * columns), product)
    return (product,)


def _sparse(
    value: str,
    label: str,
    channels: int,
    dims: tuple[int, ...],
    columns: int,
    nnz: int,
    weights: str,
    entries: int,
    axis: str,
) -> tuple[Step, ...]:
    k = len(dims)
    flops = channels * nnz * (k + 1)  # k - 1 products between operands, one by the value, one addition
    moved = ELEMENT * channels * (sum(dims) + (k + 1) * nnz + columns)
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
    for k, m in enumerate(muls):
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
    if per_row:
        root = layout.root_dim
        steps.append(Step(value, f"weigh {paths} paths, sum -> [{mul}, {layout.out_dim}]", "elementwise", axis,
                          2 * mul * root, ELEMENT * mul * (3 * root + paths + layout.out_dim), mul * root,
                          4 * mul * root, 2 * ELEMENT * mul * (3 * root + paths)))  # fmt: skip
    dim = mul * layout.out_dim
    steps.append(Step(value, f"mul_ir -> [{dim}]", "elementwise", axis, 0, 2 * ELEMENT * dim, dim, 0,
                      2 * ELEMENT * dim))  # fmt: skip
    return tuple(steps)
