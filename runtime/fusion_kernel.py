"""The root of a fuse tree with per-row weights on the native channel-wise kernel (``fdg.runtime.channelwise``).

When the root's right child has no channels (spherical harmonics, ``Y``) and the weights are per row, the root
product and the weighing of its paths are one channel-wise coupling: the left child's channels ``x`` (its irreps
blocks in ``mul_ir``), the coupling matrices ``m = Y @ K``, the weights ``w[n, path * mul + u]`` and the output.
``K`` is the root's coupling table re-indexed: per block of paths sharing a left irrep and an output irrep, the
columns ``(k, path, i)`` of :func:`fdg.runtime.channelwise_op.layout`, and ``K[j, (k, path, i)] = T[i, j, k]`` of
that path's block of the root table ``T [left, right, root]`` (its normalization included).

Where the left child is itself the product of two inputs, ``((x, z), Y)`` (the fusion block over an edge:
``x = h[src]``, ``z = h[dst]``), the kernel computes it too: its table is *paired*
(:class:`fdg.runtime.channelwise_op.Pair`, :func:`kernel_pair`), the left child's coupling table becomes the pair
stage, and the whole fuse is one 5-linear form of ``x``, ``z``, ``Y @ K``, the weights and the output, evaluated
per row without any per-row intermediate in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .channelwise_op import Pair
from .fusion_paths import FuseSpec, fuse_layout

if TYPE_CHECKING:
    from .fusion_tables import Sparse

Tensor = torch.Tensor


def kernel_paths(spec: FuseSpec) -> list[tuple[tuple[int, int], list[int]]]:
    """The kernel's blocks of the root: ``((left entry, output irrep), paths)``, by output irrep then left entry."""
    found: dict[tuple[int, int], list[int]] = {}
    for n, p in enumerate(fuse_layout(spec).paths):
        found.setdefault((p.i_out, p.left), []).append(n)
    return [((left, out), paths) for (out, left), paths in sorted(found.items())]


def pairs_inputs(spec: FuseSpec) -> bool:
    """Whether the root's left child couples two inputs (``((x, z), Y)``): the kernel can compute it per row."""
    lay = fuse_layout(spec)
    left = lay.nodes[lay.nodes[-1].left]
    n = len(spec.inputs)
    return lay.nodes[-1].left >= n and left.left < n and left.right < n


def kernel_pair(spec: FuseSpec, mul: int, left: Sparse) -> Pair:
    """The pair stage of a paired table: the two inputs of the root's left child (``mul`` channels each) and the
    entries of that child's coupling table ``left [x, z, t]`` (:func:`fdg.runtime.fusion_tables.node_table`).

    >>> from fdg.runtime.fusion_tables import node_table
    >>> spec = FuseSpec(("1o", "1o", "0e"), "0e", ((0, 1), 2))
    >>> pair = kernel_pair(spec, 2, node_table(spec, 3))
    >>> pair.x_blocks, len(pair.entries)  # 1o . 1o -> 0e: three entries, 1/sqrt(3) each
    (((2, 3),), 3)
    """
    lay = fuse_layout(spec)
    node = lay.nodes[lay.nodes[-1].left]
    x, z = (tuple((mul, e.ir.dim) for e in lay.nodes[k].entries) for k in (node.left, node.right))
    i, j, l = left.pos.tolist()
    return Pair(x, z, tuple(zip(l, i, j, left.values.tolist(), strict=True)))


def kernel_blocks(
    spec: FuseSpec, mul: int
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], tuple[tuple[int, int, tuple[int, ...]], ...]]:
    """``(x blocks, y blocks, blocks)`` of :func:`fdg.runtime.channelwise_op.table` for ``mul`` channels: the left
    child's irreps, the output irreps, and per block its left irrep, output irrep and its paths' weight offsets.

    >>> x, y, blocks = kernel_blocks(FuseSpec(("1o", "1o", "0e + 1o"), "1o", ((0, 1), 2)), 2)
    >>> x, y  # the left child 1o x 1o -> 0e + 1e + 2e; the output 1o
    (((2, 1), (2, 3), (2, 5)), ((2, 3),))
    >>> blocks  # 0e x 1o, 1e x 1o, 2e x 1o -> 1o: one path each, 2 weights per path
    ((0, 0, (0,)), (1, 0, (2,)), (2, 0, (4,)))
    """
    lay = fuse_layout(spec)
    root = lay.nodes[-1]
    left = lay.nodes[root.left]
    x_blocks = tuple((mul, e.ir.dim) for e in left.entries)
    y_blocks = tuple((mul, ir.dim) for ir in lay.outputs)
    blocks = tuple((e, o, tuple(n * mul for n in paths)) for (e, o), paths in kernel_paths(spec))
    return x_blocks, y_blocks, blocks


def kernel_matrix(spec: FuseSpec, root: Sparse) -> Tensor:
    """``K [right, columns]`` from the root table ``root`` (float64, exact as the table is)."""
    lay = fuse_layout(spec)
    node = lay.nodes[-1]
    left = lay.nodes[node.left]
    dense = torch.zeros(root.shape, dtype=root.values.dtype)
    dense[tuple(root.pos)] = root.values
    parts = []
    for (e, o), paths in kernel_paths(spec):
        d1, d3 = left.entries[e].ir.dim, lay.outputs[o].dim
        offset = left.entries[e].offset
        # [right, k, path, i]
        block = torch.stack(
            [dense[offset : offset + d1, :, lay.paths[n].offset : lay.paths[n].offset + d3] for n in paths], 0
        )  # [path, i, right, k]
        parts.append(block.permute(2, 3, 0, 1).reshape(dense.shape[1], d3 * len(paths) * d1))
    return torch.cat(parts, 1)
