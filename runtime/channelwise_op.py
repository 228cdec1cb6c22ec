"""The fused lowering of a channel-wise coupling: one native CPU kernel per call (``csrc/channelwise.cpp``).

A ``uvu`` coupling of ``a`` with a wire ``b`` of multiplicity one is, per row, a sparse 4-linear form

    F(x, m, w, y) = sum over entries (p, k, i, c) and channels u of  y[p: u, k] * m[c] * w[p: u] * x[p: u, i]

of the channels ``x`` (``a``, ``mul_ir``), the coupling matrices ``m = b @ K`` (the CG tensors of every path
contracted with ``b``, :func:`fdg.runtime.grouped.coupling_matrix`), the per-path weights ``w`` and the output
``y``.  The entries are the structural non-zeros of ``K``'s columns: the kernel skips what the CG tensors make zero.
:func:`channelwise` takes three of the four operands and returns the fourth, the gradient of ``F`` with respect to
it: with ``y`` missing that is the coupling itself, with ``x``, ``m`` or ``w`` missing a backward.  Every derivative
of one of these maps is another one, so the autograd formula below is the op itself and the result is
differentiable to any order (force training takes second derivatives).

``x`` and ``y`` may each come with an index over the rows (message passing: ``x = h`` read at ``src``, ``y`` summed
by ``dst``).  Then row ``r`` reads row ``index[r]`` of that operand in place, and where that operand is the one
computed, the rows are summed by the index: a gather and a scatter-sum inside the kernel, with no per-row copy.
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
from collections.abc import Sequence
from typing import Any, Optional

import torch
from torch import Tensor

from fdg.runtime import native

#: the fixed-size part of a table: the header, then per path, per irrep block and per entry
HEADER, PATH, BLOCK, ENTRY = 8, 8, 3, 3


def table(
    a_blocks: tuple[tuple[int, int], ...],
    y_blocks: tuple[tuple[int, int], ...],
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
    matrix: Tensor,
) -> Tensor:
    """The kernel's description of a coupling whose coupling matrix is ``matrix``, as an int64 vector: :func:`layout`
    with the columns of ``matrix`` that are not identically zero.

    >>> t = table(((2, 1),), ((2, 1),), ((0, 0, (0,)),), torch.ones(1, 1))  # 2x0e x 0e -> 2x0e
    >>> t.tolist()[8:]  # the path, the blocks of a and y, one entry (k=0, i=0, column 0)
    [0, 0, 2, 1, 1, 0, 0, 1, 0, 2, 1, 0, 2, 1, 0, 0, 0]
    """
    return torch.tensor(layout(a_blocks, y_blocks, blocks, (matrix != 0).any(0).tolist()), dtype=torch.long)


def layout(
    a_blocks: tuple[tuple[int, int], ...],
    y_blocks: tuple[tuple[int, int], ...],
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...],
    nonzero: Sequence[bool],
) -> list[int]:
    """The kernel's description of a coupling (layout in ``csrc/channelwise.cpp``).

    ``a_blocks`` and ``y_blocks`` are the ``(mul, 2l+1)`` of the irreps of ``a`` and of the output; ``nonzero``
    flags the columns of the coupling matrix ``K`` (:func:`fdg.runtime.grouped.coupling_matrix`), which are grouped by
    block of paths sharing an input and an output irrep and indexed ``(k, path, i)`` inside a block; ``blocks[n] =
    (input irrep, output irrep, weight offsets of its paths)`` describes block ``n``.  Only the columns of ``K`` that
    are not identically zero become entries: CG tensors are exact, so their zeros are exact in any dtype, and the plan
    knows them from the exact tables (:func:`fdg.runtime.grouped.column_support`).
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
    header = [len(paths) // PATH, len(a_blocks), len(y_blocks), len(entries) // ENTRY]
    header += [a_offsets[-1], column, weights, y_offsets[-1]]
    sizes = [v for off, (mul, dim) in zip(a_offsets, a_blocks, strict=False) for v in (off, mul, dim)]
    sizes += [v for off, (mul, dim) in zip(y_offsets, y_blocks, strict=False) for v in (off, mul, dim)]
    return header + paths + sizes + entries


def work(table: Sequence[int]) -> tuple[int, int]:
    """``(multiply-adds per row, entries)`` of the coupling a table describes: per path, one multiply-add on every
    channel for each entry, and one with the weights for each output component that has entries (what the kernel's
    forward does; each backward product does about as much).

    >>> work(layout(((2, 1),), ((2, 1),), ((0, 0, (0,)),), [True]))  # 2 channels x (1 entry + 1 weight)
    (4, 1)
    """
    t = list(table)
    n_paths, n_blocks, n_entries = t[0], t[1] + t[2], t[3]
    entries = t[HEADER + PATH * n_paths + BLOCK * n_blocks :]
    total = 0
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
) -> Tensor:
    """The coupling ``y [n, Y]`` of channels ``x [n, X]``, coupling matrices ``m [n, M]`` and weights ``w``
    (``[n, W]`` per row, or ``[W]`` shared) described by ``table`` (:func:`table`); ``sizes = [X, M, W, Y]``.

    With ``x_index [n]``, row ``r`` reads row ``x_index[r]`` of ``x`` (a gather ``x[x_index]``, fused: no copy is
    made); with ``y_index [n]``, the result is summed by it into ``y_rows`` rows (``sum(..., by = y_index)``, fused:
    no per-row result is made), deterministically. Indices out of range raise ``IndexError`` before any is read.
    Needs :func:`load`.
    """
    return torch.ops.fdg.channelwise(x, m, w, None, x_index, y_index, x.shape[0], y_rows, table, sizes, w.dim() == 1)


Maybe = Optional[Tensor]  # noqa: UP045


class _Shape:
    """The number of rows ``n`` of a call, and the rows each operand has (``x``, ``y``: their own where indexed): the
    shape function of the ops (``Shape`` in ``csrc/ops.cpp``, which also checks the operands against it)."""

    def __init__(
        self,
        operands: list[Maybe],
        x_index: Maybe,
        y_index: Maybe,
        x_rows: int,
        y_rows: int,
        sizes: list[int],
        shared: bool,
    ) -> None:
        self.sizes, self.shared = sizes, shared
        indices = (x_index, None, None, y_index)
        direct = [t for s, t in enumerate(operands) if t is not None and indices[s] is None and not (s == 2 and shared)]
        batched = [i.shape[0] for i in (x_index, y_index) if i is not None] + [t.shape[0] for t in direct]
        self.n = batched[0] if batched else 0
        self.rows = [
            x_rows if x_index is not None else self.n,
            self.n,
            self.n,
            y_rows if y_index is not None else self.n,
        ]

    def of(self, slot: int) -> tuple[int, ...]:
        return (self.sizes[2],) if slot == 2 and self.shared else (self.rows[slot], self.sizes[slot])


def _fake(
    x: Maybe,
    m: Maybe,
    w: Maybe,
    y: Maybe,
    x_index: Maybe,
    y_index: Maybe,
    x_rows: int,
    y_rows: int,
    table: Tensor,
    sizes: list[int],
    shared: bool,
) -> Tensor:
    operands = [x, m, w, y]
    like = next(t for t in operands if t is not None)
    missing = operands.index(None)
    return like.new_empty(_Shape(operands, x_index, y_index, x_rows, y_rows, sizes, shared).of(missing))


def _setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    """What the derivatives of either op need (``fdg::channelwise_grads`` has no ``shared``: per-row weights)."""
    x, m, w, y, x_index, y_index, x_rows, y_rows, table, sizes, *shared = inputs
    ctx.save_for_backward(x, m, w, y, x_index, y_index, table)
    ctx.rows, ctx.sizes, ctx.shared = (x_rows, y_rows), sizes, bool(shared and shared[0])


def _derivatives(ctx: Any, computed: list[tuple[int, Maybe]]) -> list[Maybe]:
    """The gradients of ``(x, m, w, y)`` given those of computed operands ``(slot, gradient)``: each operand's is the
    op itself with that operand missing and the gradient in the computed one's place, read through the same indices
    (so it is differentiable again): the gradient of a gathered operand is summed by its index, and a summed output's
    gradient is read through it.  Summed over the computed operands."""
    *operands, x_index, y_index, table = ctx.saved_tensors
    grads: list[Maybe] = [None, None, None, None]
    for computed_slot, grad in computed:
        if grad is None:
            continue
        for slot in range(4):
            if slot != computed_slot and ctx.needs_input_grad[slot]:
                args = list(operands)
                args[computed_slot], args[slot] = grad, None
                part = torch.ops.fdg.channelwise(*args, x_index, y_index, *ctx.rows, table, ctx.sizes, ctx.shared)
                grads[slot] = part if grads[slot] is None else grads[slot] + part
    return grads


def _backward(ctx: Any, grad: Tensor) -> tuple[Maybe, ...]:
    """:func:`_derivatives` of the computed operand.  The usual backward of a forward, all of x, m and w with per-row
    weights, is one pass of the kernel (``fdg::channelwise_grads``): the same updates in the same order as the three
    calls (equal up to how the compiler fuses multiply-adds)."""
    *operands, x_index, y_index, table = ctx.saved_tensors
    missing = operands.index(None)
    if missing == 3 and not ctx.shared and all(ctx.needs_input_grad[:3]):
        x, m, w, _ = operands
        grads_xmw = torch.ops.fdg.channelwise_grads(x, m, w, grad, x_index, y_index, *ctx.rows, table, ctx.sizes)
        return (*grads_xmw, *[None] * 8)
    return (*_derivatives(ctx, [(missing, grad)]), *[None] * 7)


def _fake_gradients(
    x: Tensor,
    m: Tensor,
    w: Tensor,
    y: Tensor,
    x_index: Maybe,
    y_index: Maybe,
    x_rows: int,
    y_rows: int,
    table: Tensor,
    sizes: list[int],
) -> tuple[Tensor, Tensor, Tensor]:
    shape = _Shape([x, m, w, y], x_index, y_index, x_rows, y_rows, sizes, False)
    return x.new_empty(shape.of(0)), x.new_empty(shape.of(1)), x.new_empty(shape.of(2))


def _backward_gradients(ctx: Any, gx: Maybe, gm: Maybe, gw: Maybe) -> tuple[Maybe, ...]:
    """Output ``s`` is ``fdg::channelwise`` with operand ``s`` missing: its derivatives are that op's."""
    return (*_derivatives(ctx, [(0, gx), (1, gm), (2, gw)]), *[None] * 6)
