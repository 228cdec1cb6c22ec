"""Run-time pieces of the grouped lowering of channel-wise couplings (see ``docs/performance.md``).

A channel-wise (``uvu``) coupling of ``a`` with a wire ``b`` of multiplicity one — the spherical harmonics of a
convolution — is computed per row as a few small batched matrix products: the CG tensors of all paths are first
contracted with ``b`` into per-row *coupling matrices* (one block per pair of input and output irrep), and each
block multiplies the weighted channels of ``a``.  :func:`coupling_matrix` builds the constant that turns ``b`` into
those blocks; :func:`chunked` runs such a computation over slices of rows so that its intermediates stay in cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from fdg.runtime.constants import constant
from fdg.runtime.wigner import wigner_3j, wigner_3j_exact

#: one path of a block: ``(l1, l2, l3, offset of b's irrep l2 in b, normalization)``
BlockPath = tuple[int, int, int, int, float]


@constant
def _coupling_float64(rows: int, blocks: tuple[tuple[BlockPath, ...], ...]) -> Tensor:
    columns = []
    for paths in blocks:
        l1, _, l3, _, _ = paths[0]
        block = torch.zeros(rows, 2 * l3 + 1, len(paths), 2 * l1 + 1, dtype=torch.float64)
        for p, (_, l2, _, offset, alpha) in enumerate(paths):
            # wigner_3j is [i, j, k]; the block is indexed [j (row of b), k, path, i]
            block[offset : offset + 2 * l2 + 1, :, p, :] = wigner_3j(l1, l2, l3, dtype=torch.float64).permute(1, 2, 0)
            block[offset : offset + 2 * l2 + 1, :, p, :] *= alpha
        columns.append(block.reshape(rows, -1))
    return torch.cat(columns, dim=1)


@functools.cache
def column_support(blocks: tuple[tuple[BlockPath, ...], ...]) -> tuple[bool, ...]:
    """Which columns of :func:`coupling_matrix` are not identically zero, from the exact CG tables (no tensor built).

    >>> column_support((((1, 1, 0, 1, 1.0),),))  # 1o x 1o -> 0e: every (k, i) meets some row of b
    (True, True, True)
    """
    flags: list[bool] = []
    for paths in blocks:
        l1, _, l3, _, _ = paths[0]
        support = [{(i, k) for i, _, k in wigner_3j_exact(l1, l2, l3)} for _, l2, _, _, _ in paths]
        flags += [(i, k) in support[p] for k in range(2 * l3 + 1) for p in range(len(paths)) for i in range(2 * l1 + 1)]
    return tuple(flags)


def coupling_nonzeros(blocks: tuple[tuple[BlockPath, ...], ...]) -> int:
    """The number of entries of :func:`coupling_entries`, from the exact CG tables: each path adds its own."""
    return sum(len(wigner_3j_exact(l1, l2, l3)) for paths in blocks for l1, l2, l3, _, _ in paths)


def coupling_matrix(
    rows: int,
    blocks: tuple[tuple[BlockPath, ...], ...],
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``[rows, columns]`` matrix ``K`` with ``(b @ K)`` = the coupling-matrix blocks of ``b``, concatenated.

    Block ``n`` collects paths ``(l1, l2, l3)`` that share ``l1`` and ``l3``; its columns are indexed
    ``(k, path, i)`` (``k`` the output component, ``i`` the component of ``a``), so that ``(b @ K)[:, block]`` viewed as
    ``[batch, 2l3+1, paths * (2l1+1)]`` is the left factor of one batched matmul.  Path normalizations are folded in.

    >>> K = coupling_matrix(4, (((1, 1, 0, 1, 1.0),),), dtype=torch.float64)  # b = 0e+1o; 1o x 1o -> 0e
    >>> K.shape, bool(torch.allclose(K[1:, :], torch.eye(3, dtype=torch.float64) / 3**0.5))
    (torch.Size([4, 3]), True)
    """
    table = _coupling_float64(rows, blocks)
    return table.to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)


def coupling_entries(
    rows: int,
    blocks: tuple[tuple[BlockPath, ...], ...],
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """The non-zeros of :func:`coupling_matrix`: ``(index [2, nnz] (row, column), values [nnz])``, column-major.

    CG tensors are mostly zeros (exact zeros: the tables are exact), so contracting ``b`` with them entry by entry
    (:func:`sparse_matmul`) costs ``nnz`` products instead of ``rows x columns``.
    """
    table = _coupling_float64(rows, blocks)
    index = table.T.nonzero().flip(1).T  # column-major: each column's entries together
    values = table[index[0], index[1]]
    return index.to(device=device), values.to(dtype=dtype or torch.get_default_dtype(), device=device)


def coupling_values(
    rows: int,
    blocks: tuple[tuple[BlockPath, ...], ...],
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``values`` of :func:`coupling_entries` (a buffer re-derived exactly when a module changes dtype)."""
    return coupling_entries(rows, blocks, dtype, device)[1]


def sparse_matmul(b: Tensor, index: Tensor, values: Tensor, columns: int) -> Tensor:
    """``b @ K`` for the sparse ``K`` given by its entries: gather, scale, add (unrolled sparse arithmetic).

    Differentiable twice (``index_select``, ``*`` and ``index_add`` are); equal to the dense product.

    >>> K = torch.tensor([[0.0, 2.0], [3.0, 0.0]], dtype=torch.float64)
    >>> b = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    >>> sparse_matmul(b, K.nonzero().T, K[K != 0], 2).tolist()
    [[3.0, 2.0]]
    """
    terms = b.index_select(1, index[0]) * values
    return b.new_zeros(b.shape[0], columns).index_add(1, index[1], terms)


def transposition(blocks: tuple[tuple[int, int], ...], device: torch.device | str | None = None) -> Tensor:
    """The column index turning blocks ``(mul, dim)`` laid out ``ir_mul`` (``[dim, mul]`` each) into ``mul_ir``.

    ``x.index_select(1, transposition(blocks))`` reorders every row at once.  On CPU this one gather is 2-3x faster
    than a ``transpose(1, 2).contiguous()`` per block: a copy whose innermost dimension is ``2l+1`` is several times
    slower than a plain copy.  The inverse permutation (``argsort``) goes the other way, ``mul_ir`` to ``ir_mul``.

    >>> transposition(((2, 3),)).tolist()  # [m, u] -> [u, m] for 2 channels of a 3-dimensional irrep
    [0, 2, 4, 1, 3, 5]
    """
    parts, offset = [], 0
    for mul, dim in blocks:
        parts.append(torch.arange(offset, offset + mul * dim).view(dim, mul).T.reshape(-1))
        offset += mul * dim
    return torch.cat(parts).to(device=device) if parts else torch.zeros(0, dtype=torch.long, device=device)


class _Permute(torch.autograd.Function):
    """Columns reordered by a permutation; the gradient is reordered back by the inverse permutation, through this
    same function, so that it is differentiable to any order (``index_select``'s own backward scatters with
    ``index_add``, slower for what is only a permutation)."""

    @staticmethod
    def forward(x: Tensor, index: Tensor, inverse: Tensor) -> Tensor:
        return x.index_select(1, index)

    @staticmethod
    def setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        _, index, inverse = inputs
        ctx.save_for_backward(index, inverse)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        index, inverse = ctx.saved_tensors  # type: ignore[attr-defined]
        return _Permute.apply(grad, inverse, index), None, None


def permute_columns(x: Tensor, index: Tensor, inverse: Tensor) -> Tensor:
    """``x.index_select(1, index)`` for a permutation ``index`` with inverse ``inverse`` (``index[inverse] = id``).

    >>> index = transposition(((2, 3),))
    >>> x = torch.arange(6.0).view(1, 6)
    >>> permute_columns(x, index, torch.argsort(index)).tolist()
    [[0.0, 2.0, 4.0, 1.0, 3.0, 5.0]]
    """
    return _Permute.apply(x, index, inverse)


def chunked(fn: Callable[..., Tensor], size: int, *rows: Tensor) -> Tensor:
    """``fn(*rows)`` computed on slices of at most ``size`` rows and concatenated.

    Slicing keeps the intermediates of one slice in cache, which is what makes the grouped lowering fast on CPU.
    Elsewhere the whole batch goes through at once: a GPU wants few large kernels, not a cache-sized loop, and under
    ``torch.compile`` the compiler fuses the intermediates away (and a loop over a symbolic batch would not trace).
    """
    if rows[0].device.type != "cpu" or torch.compiler.is_compiling() or rows[0].shape[0] <= size:
        return fn(*rows)
    parts = zip(*(t.split(size) for t in rows), strict=True)
    return torch.cat([fn(*part) for part in parts])
