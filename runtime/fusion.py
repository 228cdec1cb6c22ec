"""Run-time pieces of the ``fuse`` vertex: channel layout, products of several operands with a constant table, and
the ways weights enter (see :mod:`fdg.runtime.fusion_tables` for the tables and ``docs/performance.md`` for when each
is used).

Inside a fuse every value is *channel-wise*: ``[n, mul, d]``, each channel's ``d`` components together (an input of
multiplicity one is ``[n, 1, d]`` and broadcasts over the channels).  Every function is made of ``index_select``,
``index_add``, products and matmuls, so it is differentiable twice and traces under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import torch

from .channelwise_op import Pair
from .fusion_kernel import kernel_pair
from .fusion_paths import FuseSpec, Tree, fuse_layout
from .fusion_tables import FuseTable, fusion_table, fusion_values, node_table

Tensor = torch.Tensor

__all__ = [
    "FuseSpec",
    "FuseTable",
    "Tree",
    "channels",
    "dense_product",
    "fold_weights",
    "fusion_table",
    "fusion_values",
    "mul_ir",
    "pair_of",
    "recouple",
    "sparse_product",
    "weigh_paths",
]


def channels(x: Tensor, mul: int, dims: list[int]) -> Tensor:
    """``[n, mul * sum(dims)]`` in ``mul_ir`` layout (irreps of ``dims`` components, ``mul`` copies each) to
    ``[n, mul, sum(dims)]``.

    >>> channels(torch.arange(8.0).view(1, 8), 2, [1, 3]).tolist()  # 2x0e + 2x1o
    [[[0.0, 2.0, 3.0, 4.0], [1.0, 5.0, 6.0, 7.0]]]
    """
    n = x.shape[0]
    if len(dims) == 1:
        return x.reshape(n, mul, dims[0])
    blocks = x.split([mul * d for d in dims], dim=1)
    return torch.cat([b.reshape(n, mul, d) for b, d in zip(blocks, dims, strict=True)], dim=2)


def mul_ir(y: Tensor, dims: list[int]) -> Tensor:
    """The inverse of :func:`channels`: ``[n, mul, sum(dims)]`` to ``[n, mul * sum(dims)]`` in ``mul_ir`` layout."""
    n, mul = y.shape[0], y.shape[1]
    if len(dims) == 1:
        return y.reshape(n, mul * dims[0])
    return torch.cat([b.reshape(n, mul * d) for b, d in zip(y.split(dims, dim=2), dims, strict=True)], dim=1)


def dense_product(operands: list[Tensor], table: Tensor, split_last: bool = False) -> Tensor:
    """``sum T[x0, x1, ..., c] * operands[0][.., x0] * operands[1][.., x1] ...`` with ``table`` ``[rows, c]`` (or
    ``[mul, rows, c]``: one table per channel), rows in row-major order of the operands' components.

    The outer product of the operands' components, flattened, times the table; with ``split_last``, the outer
    product of all but the last operand times the table viewed as ``[rows / d, d * c]``, then the last operand
    contracted with that: the same FLOPs, and an intermediate of ``d * c`` instead of ``rows`` per channel, which
    is smaller when the last operand is large and the result small (the root of a tree).

    >>> a, b = torch.randn(2, 1, 3), torch.randn(2, 1, 3)
    >>> dot = torch.eye(3).reshape(9, 1)  # a . b
    >>> bool(torch.allclose(dense_product([a, b], dot, split_last=True), (a * b).sum(-1, keepdim=True)))
    True
    """
    x = operands[0]
    for y in operands[1 : len(operands) - int(split_last)]:
        x = (x.unsqueeze(-1) * y.unsqueeze(-2)).flatten(-2)
    if split_last:
        d, c = operands[-1].shape[-1], table.shape[-1]
        table = table.reshape(*table.shape[:-2], -1, d * c)
    if table.dim() == 2:
        x = x @ table
    elif x.shape[1] == 1:  # operands without channels: one matmul against every channel's table side by side
        x = (x.squeeze(1) @ table.transpose(0, 1).flatten(1)).unflatten(-1, (table.shape[0], -1))
    else:
        x = torch.einsum("zux,uxc->zuc", x, table)
    if split_last:
        x = (operands[-1].unsqueeze(-1) * x.unflatten(-1, (d, c))).sum(-2)
    return x


def sparse_product(operands: list[Tensor], index: Tensor, values: Tensor, columns: int) -> Tensor:
    """The same product entry by entry: ``index[k]`` picks a component of operand ``k``, ``index[-1]`` the column;
    ``values`` is ``[nnz]`` or ``[mul, nnz]`` (one value per channel).  Costs ``operands`` products per non-zero
    instead of one per entry of the dense table."""
    terms = operands[0].index_select(-1, index[0])
    for k in range(1, len(operands)):
        terms = terms * operands[k].index_select(-1, index[k])
    terms = terms * values
    return terms.new_zeros((*terms.shape[:-1], columns)).index_add(-1, index[-1], terms)


def fold_weights(w: Tensor, index: Tensor, values: Tensor, size: int) -> Tensor:
    """Per-channel table ``W [mul, size]`` from weights ``w [paths, mul]``: entry ``e`` adds
    ``w[index[0, e]] * values[e]`` at position ``index[1, e]``."""
    terms = w.index_select(0, index[0]) * values.unsqueeze(-1)
    return w.new_zeros(size, w.shape[1]).index_add(0, index[1], terms).T


def weigh_paths(r: Tensor, w: Tensor | None, index: Tensor, columns: int) -> Tensor:
    """Paths summed into the output channel: ``r [n, mul, root]`` (a block per path), weights ``w [n, paths, mul]``
    per row (or ``None``), ``index [2, root]`` the path and output column of each of ``r``'s columns."""
    if w is not None:
        r = r * w.index_select(1, index[0]).transpose(1, 2)
    return r.new_zeros((*r.shape[:-1], columns)).index_add(-1, index[1], r)


def recouple(w: Tensor, index: Tensor, values: Tensor, paths: int) -> Tensor:
    """Weights ``w [..., paths_from, mul]`` of one tree's paths as weights of another tree's: ``w' = R^T w`` with the
    sparse ``R`` of :func:`fdg.runtime.fusion_tables.recoupling` (entries ``index [2, nnz]``, ``values``)."""
    terms = w.index_select(-2, index[0]) * values.unsqueeze(-1)
    return w.new_zeros((*w.shape[:-2], paths, w.shape[-1])).index_add(-2, index[1], terms)


def pair_of(spec: FuseSpec, mul: int) -> Pair:
    """The root's left child of ``spec`` (two inputs of ``mul`` channels) as the native kernel's pair stage
    (:func:`fdg.runtime.fusion_kernel.kernel_pair`), for ``register_channelwise``."""
    return kernel_pair(spec, mul, node_table(spec, fuse_layout(spec).nodes[-1].left))
