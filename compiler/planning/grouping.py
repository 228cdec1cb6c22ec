"""The grouped lowering of a channel-wise coupling: which paths share a batched matmul.

``couple(a, b) [mode = uvu]`` with every irrep of ``b`` of multiplicity one (spherical harmonics, edge attributes)
is, per row, ``y[k] = sum_p w_p * (M_p @ a[i1(p)])`` where ``M_p = b . CG_p`` is a small matrix.  Paths from the
same input irrep to the same output irrep form a *block*: one batched matmul
``[2l3+1, n*(2l1+1)] @ [n*(2l1+1), mul]`` per block, with the weights multiplied into the channels of ``a`` first.
Compared with one dense einsum per path (e3nn's way) this never forms the outer product of ``a`` and ``b``, never
multiplies by CG zeros across ``l2`` and touches each channel of ``a`` once per block instead of once per path.
A fully connected ``uvw`` coupling with shared weights is grouped the same way without weights (``M_p @ a``, one
matmul per input irrep), then mixed over channels by one large matmul per output irrep with the stacked weights of
its paths — where e3nn runs one einsum per path.  This module decides the blocks; ``fdg.cost`` prices them and
``codegen/grouped.py`` writes them out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from fdg import ir
from fdg.runtime.grouped import BlockPath, coupling_nonzeros

#: rows per slice: the intermediates of one slice (~25 MB) stay in the L3 cache; on 2 idle threads 1024 rows ran as
#: fast, but with busy CPUs every one of a slice's ~150 multi-threaded calls waits for a descheduled thread, and
#: 4096 rows (4x fewer calls) ran 3x faster than 1024 there (docs/performance.md)
CHUNK = 4096
#: rows per slice of a grouped ``uvw`` coupling: its few large matmuls keep their operands in cache on smaller slices
#: (1024 rows ran 7-13% faster than 4096 on the 128-channel node layer, 1 and 2 threads, interleaved medians)
CHUNK_UVW = 1024


@dataclass(frozen=True)
class Block:
    """Paths of one input irrep of ``a`` into one output irrep: one batched matmul."""

    i_in: int
    i_out: int
    paths: tuple[int, ...]  # indices into the vertex's paths, in e3nn order
    mul: int
    d_in: int
    d_out: int

    @property
    def weights_after(self) -> bool:
        """Multiply the weights into the matmul's result rather than into ``a``: fewer products for one path whose
        output is smaller than its input (``2e x 2e -> 0e``), and ``a`` enters the matmul as it is."""
        return len(self.paths) == 1 and self.d_out < self.d_in

    @property
    def width(self) -> int:
        """The contracted size ``paths * (2l1+1)`` of the block's matmul."""
        return len(self.paths) * self.d_in

    @property
    def columns(self) -> int:
        """Its columns of the coupling matrix: a ``[d_out, width]`` matrix per row."""
        return self.d_out * self.width


@dataclass(frozen=True)
class Grouped:
    mode: str  # "uvu" or "uvw"
    blocks: tuple[Block, ...]  # uvu: sorted by (output irrep, input irrep); uvw: one per path, by input irrep
    rows: int  # b.irreps.dim
    columns: int  # a.irreps.dim
    recipe: tuple[tuple[BlockPath, ...], ...]  # the coupling matrix, see fdg.runtime.grouped.coupling_matrix
    nonzeros: int  # of the coupling matrix
    chunk: int
    sparse: bool = False  # b meets the coupling matrix entry by entry (fdg.runtime.sparse_matmul), not by a matmul
    fused: bool = False  # uvu: one native kernel call (fdg.runtime.channelwise) where it runs, these blocks elsewhere
    # Python names the plan gives: the method computing one slice of rows, the coupling-matrix buffer, the
    # permutations from ir_mul to mul_ir of a and of the result, and the native kernel's table
    method: str = ""
    matrix: str = ""
    layout_a: str = ""
    layout_y: str = ""
    table: str = ""

    @property
    def matrix_columns(self) -> int:
        """The columns of the coupling matrix ``K``: every block's."""
        return sum(blk.columns for blk in self.blocks)


def kernel_blocks(op: ir.Couple, g: Grouped) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """Per block, ``(input irrep, output irrep, offsets of its paths' weights)``: what the native kernel's table
    (:func:`fdg.runtime.channelwise_op.table`) needs besides the irreps and the coupling matrix."""
    offsets = list(itertools.accumulate((math.prod(p.shape) for p in op.paths), initial=0))
    return tuple((blk.i_in, blk.i_out, tuple(offsets[n] for n in blk.paths)) for blk in g.blocks)


def group(op: ir.Couple, a: ir.Feature, b: ir.Feature) -> Grouped | None:
    """The blocks of a coupling that the grouped lowering can compute, or ``None``.

    ``uvu`` with weights (per row or shared): one block per (output irrep, input irrep), weights times channels.
    ``uvw`` with shared learned weights: one block per path, ordered by input irrep, so that the coupling matrices
    of one input irrep stack into one matmul ``[sum of 2l3+1, 2l1+1] @ [2l1+1, u]``; the channel mixing that follows
    is one large matmul per output irrep over the stacked paths' ``[u, w]`` weights.
    """
    if any(mul != 1 for mul, _ in b.irreps):
        return None
    members: dict[tuple[int, int], list[int]] = {}
    if op.mode == "uvu" and op.weights.kind != "none":
        for n, p in enumerate(op.paths):
            members.setdefault((p.i_out, p.i1), []).append(n)
    elif op.mode == "uvw" and op.weights.kind == "learned":
        for n, p in enumerate(op.paths):
            members[(p.i1, n)] = [n]
    else:
        return None
    blocks = []
    recipe = []
    offsets = [0]
    for _, ir_ in b.irreps:
        offsets.append(offsets[-1] + ir_.dim)
    for key, paths in sorted(members.items()):
        i_in, i_out = (key[0], op.paths[key[1]].i_out) if op.mode == "uvw" else (key[1], key[0])
        mul, ir_in = a.irreps[i_in]
        blocks.append(Block(i_in, i_out, tuple(paths), mul, ir_in.dim, op.irreps_out[i_out].ir.dim))
        recipe.append(
            tuple(
                (
                    ir_in.l,
                    b.irreps[op.paths[n].i2].ir.l,
                    op.irreps_out[i_out].ir.l,
                    offsets[op.paths[n].i2],
                    op.paths[n].alpha,
                )
                for n in paths
            )
        )
    chunk = CHUNK_UVW if op.mode == "uvw" else CHUNK
    nonzeros = coupling_nonzeros(tuple(recipe))
    return Grouped(op.mode, tuple(blocks), b.irreps.dim, a.irreps.dim, tuple(recipe), nonzeros, chunk)
