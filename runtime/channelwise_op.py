"""The fused lowering of a channel-wise coupling: one native CPU kernel per call (``csrc/channelwise.cpp``).

A ``uvu`` coupling of ``a`` with a wire ``b`` of multiplicity one is, per row, a sparse 4-linear form

    F(x, m, w, y) = sum over entries (p, k, i, c) and channels u of  y[p: u, k] * m[c] * w[p: u] * x[p: u, i]

of the channels ``x`` (``a``, ``mul_ir``), the coupling matrices ``m = b @ K`` (the CG tensors of every path
contracted with ``b``, :func:`fdg.runtime.grouped.coupling_matrix`), the per-path weights ``w`` and the output
``y``.  The entries are the structural non-zeros of ``K``'s columns: the kernel skips what the CG tensors make zero.

A *paired* table (:class:`Pair`) makes the form 5-linear: the channels coupled with ``m`` are not an operand but
the channel-wise product of two, ``t[l, u] = sum over pairs (l, i, j, v) of v * x[i, u] * z[j, u]`` (the left child
``(x, z)`` of a fuse tree ``((x, z), b)``), computed per row inside the kernel and never stored.

:func:`channelwise` takes all operands but one and returns the missing one, the gradient of ``F`` with respect to
it: with ``y`` missing that is the coupling itself, with ``x``, ``z``, ``m`` or ``w`` missing a backward.  Every
derivative of one of these maps is another one, so the autograd formula below is the op itself and the result is
differentiable to any order (force training takes second derivatives).

``x``, ``z`` and ``y`` may each come with an index over the rows (message passing: ``x = h`` read at ``src``, ``y``
summed by ``dst``).  Then row ``r`` reads row ``index[r]`` of that operand in place, and where that operand is the
one computed, the rows are summed by the index: a gather and a scatter-sum inside the kernel, with no per-row copy.
The derivatives keep the indices, so the gradient of a gathered operand is summed by its index and a summed
output's gradient is read through it.  The sums are deterministic (each output row adds its rows in increasing
order, whatever the number of threads), and indices are range-checked before any is read.

The ops ``torch.ops.fdg.channelwise`` and ``fdg.channelwise_grads`` (CPU only) are registered in C++
(``csrc/ops.cpp``, built by :mod:`fdg.runtime.native`), which also checks their operands; :func:`load` adds their
shape functions, so modules using them trace under ``torch.compile(fullgraph=True)`` and ``torch.export``, and their
derivatives.  Where the native kernels cannot be built (:func:`fdg.runtime.native.status`) or off the CPU,
generated modules take the grouped lowering instead.
"""

import functools
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor

from fdg.runtime import native

#: the fixed-size part of a table: the header, then per path, per irrep block, per entry and per pair
HEADER, PATH, BLOCK, ENTRY, PAIR = 13, 8, 3, 3, 4

Blocks = tuple[tuple[int, int], ...]  # (mul, 2l+1) of each irrep of an operand


class Pair(NamedTuple):
    """The channel-wise product ``t = (x, z)`` a paired table computes first: the irreps blocks of ``x`` and ``z``,
    and ``entries (l, i, j, v)``: ``t[l] += v x[i] z[j]`` on every channel, with ``l``, ``i``, ``j`` components (in
    order over the blocks) of ``t``, ``x`` and ``z``.  Every block of ``t``, ``x`` and ``z`` has the same
    multiplicity."""

    x_blocks: Blocks
    z_blocks: Blocks
    entries: tuple[tuple[int, int, int, float], ...]


def table(
    a_blocks: Blocks,
    y_blocks: Blocks,
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
    matrix: Tensor,
    pair: Pair | None = None,
) -> Tensor:
    """The kernel's description of a coupling whose coupling matrix is ``matrix``, as an int64 vector: :func:`layout`
    with the columns of ``matrix`` that are not identically zero.

    >>> t = table(((2, 1),), ((2, 1),), ((0, 0, (0,)),), torch.ones(1, 1))  # 2x0e x 0e -> 2x0e
    >>> t.tolist()[13:]  # the path, the blocks of a and y, one entry (k=0, i=0, column 0)
    [0, 0, 2, 1, 1, 0, 0, 1, 0, 2, 1, 0, 2, 1, 0, 0, 0]
    """
    return torch.tensor(layout(a_blocks, y_blocks, blocks, (matrix != 0).any(0).tolist(), pair), dtype=torch.long)


def layout(
    a_blocks: Blocks,
    y_blocks: Blocks,
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
    nonzero: Sequence[bool],
    pair: Pair | None = None,
) -> list[int]:
    """The kernel's description of a coupling (layout in ``csrc/channelwise.cpp``).

    ``a_blocks`` and ``y_blocks`` are the ``(mul, 2l+1)`` of the irreps of ``a`` (the channels coupled: ``x``, or
    ``t`` with a ``pair``) and of the output; ``nonzero`` flags the columns of the coupling matrix ``K``
    (:func:`fdg.runtime.grouped.coupling_matrix`), which are grouped by block of paths sharing an input and an output
    irrep and indexed ``(k, path, i)`` inside a block; ``blocks[n] = (input irrep, output irrep, weight offsets of its
    paths)`` describes block ``n``.  Only the columns of ``K`` that are not identically zero become entries: CG
    tensors are exact, so their zeros are exact in any dtype, and the plan knows them from the exact tables
    (:func:`fdg.runtime.grouped.column_support`).
    """
    a_offsets = _offsets(a_blocks)
    y_offsets = _offsets(y_blocks)
    paths: list[int] = []
    entries: list[int] = []
    column = 0
    weights = 0
    for i_in, i_out, offsets in blocks:
        mul, d1 = a_blocks[i_in]
        d3 = y_blocks[i_out][1]
        width = len(offsets) * d1
        for j, w_off in enumerate(offsets):
            first = len(entries) // ENTRY
            for k in range(d3):
                for i in range(d1):
                    c = column + k * width + j * d1 + i
                    if nonzero[c]:
                        entries += [k, i, c]
            paths += [a_offsets[i_in], y_offsets[i_out], mul, d1, d3, w_off, first, len(entries) // ENTRY]
            weights = max(weights, w_off + mul)
        column += d3 * width
    if column != len(nonzero):
        raise ValueError(f"the blocks describe {column} columns, the coupling matrix has {len(nonzero)}")
    x_blocks, z_blocks = (a_blocks, ()) if pair is None else (pair.x_blocks, pair.z_blocks)
    x_width, z_width = _offsets(x_blocks)[-1], _offsets(z_blocks)[-1]
    pairs: list[int] = []
    channels = 0
    if pair is not None:
        channels = a_blocks[0][0]
        t, x, z = (_components(b) for b in (a_blocks, pair.x_blocks, pair.z_blocks))
        for l, i, j, v in sorted(pair.entries):
            pairs += [t[l], x[i], z[j], struct.unpack("<q", struct.pack("<d", v))[0]]
    header = [len(paths) // PATH, len(x_blocks), len(y_blocks), len(entries) // ENTRY]
    header += [x_width, column, weights, y_offsets[-1]]
    header += [len(pairs) // PAIR, len(z_blocks), z_width, a_offsets[-1], channels]
    sizes = [
        v
        for b in (x_blocks, y_blocks, z_blocks)
        for off, (mul, dim) in zip(_offsets(b)[:-1], b, strict=True)
        for v in (off, mul, dim)
    ]
    return header + paths + sizes + entries + pairs


def _components(blocks: Blocks) -> list[int]:
    """The offset of each component's channels in a row with components first (``ir_mul``)."""
    return [off + k * mul for off, (mul, dim) in zip(_offsets(blocks)[:-1], blocks, strict=True) for k in range(dim)]


def work(table: Sequence[int]) -> tuple[int, int]:
    """``(multiply-adds per row, entries)`` of the coupling a table describes: per path, one multiply-add on every
    channel for each entry, and one with the weights for each output component that has entries, and two on every
    channel per pair (what the kernel's forward does; each backward product does about as much).

    >>> work(layout(((2, 1),), ((2, 1),), ((0, 0, (0,)),), [True]))  # 2 channels x (1 entry + 1 weight)
    (4, 1)
    """
    t = list(table)
    n_paths, n_blocks, n_entries, n_pairs, channels = t[0], t[1] + t[2] + t[9], t[3], t[8], t[12]
    start = HEADER + PATH * n_paths + BLOCK * n_blocks
    entries = t[start : start + ENTRY * n_entries]
    total = 2 * channels * n_pairs
    for p in range(n_paths):
        _, _, mul, _, _, _, first, end = t[HEADER + PATH * p : HEADER + PATH * (p + 1)]
        components = {entries[ENTRY * e] for e in range(first, end)}
        total += mul * ((end - first) + len(components))
    return total, n_entries


def _offsets(blocks: tuple[tuple[int, int], ...]) -> list[int]:
    offsets = [0]
    for mul, dim in blocks:
        offsets.append(offsets[-1] + mul * dim)
    return offsets


def available(x: Tensor) -> bool:
    """Whether :func:`channelwise` can run on ``x``'s device and dtype (else: the grouped lowering)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and _native()


@torch.compiler.assume_constant_result
def _native() -> bool:
    return load()


@functools.cache
def load() -> bool:
    """Load the op library (:mod:`fdg.runtime.native`, built on first use) and give its ops their shape functions and
    derivatives; ``False`` where it cannot be built.  :func:`available` calls it."""
    if native.library() is None:
        return False
    torch.library.register_fake("fdg::channelwise", _fake)
    torch.library.register_fake("fdg::channelwise_grads", _fake_gradients)
    torch.library.register_autograd("fdg::channelwise", _backward, setup_context=_setup)
    torch.library.register_autograd("fdg::channelwise_grads", _backward_gradients, setup_context=_setup)
    return True


def channelwise(
    x: Tensor,
    m: Tensor,
    w: Tensor,
    table: Tensor,
    sizes: list[int],
    x_index: Optional[Tensor] = None,  # noqa: UP045
    y_index: Optional[Tensor] = None,  # noqa: UP045
    y_rows: int = 0,
    z: Optional[Tensor] = None,  # noqa: UP045
    z_index: Optional[Tensor] = None,  # noqa: UP045
) -> Tensor:
    """The coupling ``y [n, Y]`` of channels ``x [n, X]`` (paired with ``z [n, Z]`` where the table pairs them),
    coupling matrices ``m [n, M]`` and weights ``w`` (``[n, W]`` per row, or ``[W]`` shared) described by ``table``
    (:func:`table`); ``sizes = [X, M, W, Y]``.

    With ``x_index [n]``, row ``r`` reads row ``x_index[r]`` of ``x`` (a gather ``x[x_index]``, fused: no copy is
    made), and likewise ``z_index`` for ``z``; with ``y_index [n]``, the result is summed by it into ``y_rows`` rows
    (``sum(..., by = y_index)``, fused: no per-row result is made), deterministically. Indices out of range raise
    ``IndexError`` before any is read.  Needs :func:`load`.
    """
    x_size, *rest = sizes
    op_sizes = [x_size, 0 if z is None else z.shape[-1], *rest]
    z_rows = 0 if z is None else z.shape[0]
    return torch.ops.fdg.channelwise(
        x, z, m, w, None, x_index, z_index, y_index, x.shape[0], z_rows, y_rows, table, op_sizes, w.dim() == 1
    )


Maybe = Optional[Tensor]  # noqa: UP045

#: the operand slots of the ops, in order, and the slots that may have an index
SLOTS, INDEXED = "xzmwy", (0, 1, 4)


class _Shape:
    """The number of rows ``n`` of a call, and the rows each operand has (``x``, ``z``, ``y``: their own where
    indexed): the shape function of the ops (``Shape`` in ``csrc/ops.cpp``, which also checks the operands against
    it)."""

    def __init__(
        self, operands: list[Maybe], indices: tuple[Maybe, ...], rows: tuple[int, ...], sizes: list[int], shared: bool
    ) -> None:
        self.sizes, self.shared = sizes, shared
        index_of = dict(zip(INDEXED, indices, strict=True))
        direct = [
            t for s, t in enumerate(operands) if t is not None and index_of.get(s) is None and not (s == 3 and shared)
        ]
        batched = [i.shape[0] for i in indices if i is not None] + [t.shape[0] for t in direct]
        self.n = batched[0] if batched else 0
        own = dict(zip(INDEXED, rows, strict=True))
        self.rows = [own[s] if index_of.get(s) is not None else self.n for s in range(len(SLOTS))]

    def of(self, slot: int) -> tuple[int, ...]:
        return (self.sizes[3],) if slot == 3 and self.shared else (self.rows[slot], self.sizes[slot])


def _fake(
    x: Maybe,
    z: Maybe,
    m: Maybe,
    w: Maybe,
    y: Maybe,
    x_index: Maybe,
    z_index: Maybe,
    y_index: Maybe,
    x_rows: int,
    z_rows: int,
    y_rows: int,
    table: Tensor,
    sizes: list[int],
    shared: bool,
) -> Tensor:
    operands = [x, z, m, w, y]
    like = next(t for t in operands if t is not None)
    missing = next(s for s, t in enumerate(operands) if t is None and (s != 1 or sizes[1] > 0))
    shape = _Shape(operands, (x_index, z_index, y_index), (x_rows, z_rows, y_rows), sizes, shared)
    return like.new_empty(shape.of(missing))


def _setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    """What the derivatives of either op need (``fdg::channelwise_grads`` has no ``shared``: per-row weights)."""
    x, z, m, w, y, x_index, z_index, y_index, x_rows, z_rows, y_rows, table, sizes, *shared = inputs
    ctx.save_for_backward(x, z, m, w, y, x_index, z_index, y_index, table)
    ctx.rows, ctx.sizes, ctx.shared = (x_rows, z_rows, y_rows), sizes, bool(shared and shared[0])


def _call(ctx: Any, operands: list[Maybe]) -> Tensor:
    """``fdg::channelwise`` with the saved indices and table on ``operands`` (one of the form's missing)."""
    *_, x_index, z_index, y_index, table = ctx.saved_tensors
    return torch.ops.fdg.channelwise(*operands, x_index, z_index, y_index, *ctx.rows, table, ctx.sizes, ctx.shared)


def _derivatives(ctx: Any, computed: list[tuple[int, Maybe]]) -> list[Maybe]:
    """The gradients of ``(x, z, m, w, y)`` given those of computed operands ``(slot, gradient)``: each operand's is
    the op itself with that operand missing and the gradient in the computed one's place, read through the same
    indices (so it is differentiable again): the gradient of a gathered operand is summed by its index, and a summed
    output's gradient is read through it.  Summed over the computed operands."""
    operands = list(ctx.saved_tensors[: len(SLOTS)])
    slots = [s for s in range(len(SLOTS)) if s != 1 or ctx.sizes[1] > 0]  # z: only where the table pairs it
    grads: list[Maybe] = [None] * len(SLOTS)
    for computed_slot, grad in computed:
        if grad is None:
            continue
        for slot in slots:
            if slot != computed_slot and ctx.needs_input_grad[slot]:
                args = list(operands)
                args[computed_slot], args[slot] = grad, None
                part, before = _call(ctx, args), grads[slot]
                grads[slot] = part if before is None else before + part
    return grads


def _backward(ctx: Any, grad: Tensor) -> tuple[Maybe, ...]:
    """:func:`_derivatives` of the computed operand.  The usual backward of a forward, all of x, m and w with per-row
    weights, is one pass of the kernel (``fdg::channelwise_grads``): the same updates in the same order as the three
    calls (equal up to how the compiler fuses multiply-adds); z's, where it is paired, one more."""
    operands = list(ctx.saved_tensors[: len(SLOTS)])
    x, z, m, w, _ = operands
    *_, x_index, z_index, y_index, table = ctx.saved_tensors
    missing = next(s for s, t in enumerate(operands) if t is None and (s != 1 or ctx.sizes[1] > 0))
    none = [None] * 9
    if missing == 4 and not ctx.shared and ctx.needs_input_grad[0] and all(ctx.needs_input_grad[2:4]):
        gx, gm, gw = torch.ops.fdg.channelwise_grads(
            x, z, m, w, grad, x_index, z_index, y_index, *ctx.rows, table, ctx.sizes
        )
        gz = _call(ctx, [x, None, m, w, grad]) if z is not None and ctx.needs_input_grad[1] else None
        return (gx, gz, gm, gw, None, *none)
    return (*_derivatives(ctx, [(missing, grad)]), *none)


def _fake_gradients(
    x: Tensor,
    z: Maybe,
    m: Tensor,
    w: Tensor,
    y: Tensor,
    x_index: Maybe,
    z_index: Maybe,
    y_index: Maybe,
    x_rows: int,
    z_rows: int,
    y_rows: int,
    table: Tensor,
    sizes: list[int],
) -> tuple[Tensor, Tensor, Tensor]:
    shape = _Shape([x, z, m, w, y], (x_index, z_index, y_index), (x_rows, z_rows, y_rows), sizes, False)
    return x.new_empty(shape.of(0)), x.new_empty(shape.of(2)), x.new_empty(shape.of(3))


def _backward_gradients(ctx: Any, gx: Maybe, gm: Maybe, gw: Maybe) -> tuple[Maybe, ...]:
    """Output ``s`` is ``fdg::channelwise`` with operand ``s`` missing: its derivatives are that op's."""
    return (*_derivatives(ctx, [(0, gx), (2, gm), (3, gw)]), *[None] * 8)
