"""Two autograd functions on colex-ordered monomials (``monomials.py``): building them, and contracting the top degree.

Both work on a batch of column vectors: ``x`` is ``[B, d, N]`` (``d`` components, ``N`` columns; ``B`` batches the
weights), and ``prev`` holds the degree-``(k-1)`` monomials of ``x`` as ``[B, count(d, k-1), N]``. The colex order
makes the degree-``k`` monomials whose last index is ``l`` exactly ``prev[:, :size_l] * x[:, l]``, a *prefix* of
``prev`` times one component, with ``size_l = count(l + 1, k - 1)``; so neither function gathers anything.

Why custom functions rather than slices under autograd: autograd's backward of ``prev[:, :size_l]`` allocates a
zero tensor the size of all of ``prev`` for each ``l`` and adds them up (``d`` full-size temporaries, measured as a
third of the whole time). Here the backward accumulates each prefix gradient in place into one tensor. The backward
passes are written with ordinary differentiable torch operations, so second derivatives (forces in a loss) work, and
``torch.compile(fullgraph=True)`` traces both directions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .monomials import monomial_count

Tensor = torch.Tensor


def _blocks(dim: int, degree: int) -> list[tuple[int, int, int]]:
    """``(l, start, size)``: the degree-``degree`` monomials ending in ``l`` are rows ``start : start + size``."""
    out, start = [], 0
    for l in range(dim):
        size = monomial_count(l + 1, degree - 1)
        out.append((l, start, size))
        start += size
    return out


class _ColexProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, prev: Tensor, x: Tensor, degree: int) -> Tensor:
        ctx.save_for_backward(prev, x)
        ctx.degree = degree
        blocks = _blocks(x.shape[1], degree)
        out = prev.new_empty(prev.shape[0], blocks[-1][1] + blocks[-1][2], prev.shape[2])
        for l, start, size in blocks:
            out[:, start : start + size].copy_(prev[:, :size]).mul_(x[:, l : l + 1])  # in place: no temporary
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        prev, x = ctx.saved_tensors
        grad_prev = torch.zeros_like(prev) if ctx.needs_input_grad[0] else None
        grad_x = []
        for l, start, size in _blocks(x.shape[1], ctx.degree):
            block = grad[:, start : start + size]
            if grad_prev is not None:
                grad_prev[:, :size].addcmul_(block, x[:, l : l + 1])
            if ctx.needs_input_grad[1]:
                grad_x.append((block * prev[:, :size]).sum(1))
        return grad_prev, torch.stack(grad_x, 1) if grad_x else None, None


class _Group(NamedTuple):
    """Consecutive last indices ``first .. last`` whose monomial blocks are contracted together."""

    first: int
    last: int
    size: int  # rows of prev they read: the block of ``last`` is the longest


def _groups(dim: int, degree: int, count: int) -> tuple[_Group, ...]:
    """Split ``l = 0 .. dim-1`` into at most ``count`` runs, minimizing the padded rows ``sum (run length) * size``.

    Contracting a run of blocks as one matrix product pads each block to the longest one; one product per ``l``
    pads nothing but multiplies the number of operations (and, with several threads on a busy machine, the
    synchronization cost of each). Exact dynamic programming over the run boundaries (microseconds; not cached,
    since dynamo traces through caches anyway).
    """
    sizes = [size for _, _, size in _blocks(dim, degree)]
    # best[end][runs]: the cheapest split of l < end into exactly `runs` runs, as (padded rows, runs); plain loops
    # because dynamo traces this (it does not honour functools.cache)
    best: list[list[tuple[int, tuple[_Group, ...]] | None]] = [[None] * (count + 1) for _ in range(dim + 1)]
    best[0][0] = (0, ())
    for end in range(1, dim + 1):
        for runs in range(1, count + 1):
            for begin in range(end):
                before = best[begin][runs - 1]
                if before is not None:
                    cost = before[0] + (end - begin) * sizes[end - 1]
                    current = best[end][runs]
                    if current is None or cost < current[0]:
                        best[end][runs] = (cost, (*before[1], _Group(begin, end - 1, sizes[end - 1])))
    choice = None
    for runs in range(1, count + 1):
        option = best[dim][runs]
        if option is not None and (choice is None or option[0] < choice[0]):
            choice = option
    assert choice is not None
    return choice[1]


#: most matrix products per contraction (see ``_groups``)
GROUPS = 4


def _padded_weight(weight: Tensor, group: _Group, degree: int, dim: int) -> Tensor:
    """``[B, (last - first + 1) * R, size]``: the weight columns of the group's blocks, each zero-padded to ``size``."""
    blocks = _blocks(dim, degree)[group.first : group.last + 1]
    parts = [
        torch.nn.functional.pad(weight[:, :, start : start + size], (0, group.size - size)) for _, start, size in blocks
    ]
    return torch.cat(parts, 1)


class _ColexContract(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, weight: Tensor, prev: Tensor, x: Tensor, degree: int) -> Tensor:
        ctx.save_for_backward(weight, prev, x)
        ctx.degree = degree
        batch, rows, columns = weight.shape[0], weight.shape[1], x.shape[2]
        out = None
        for group in _groups(x.shape[1], degree, GROUPS):
            values = torch.bmm(_padded_weight(weight, group, degree, x.shape[1]), prev[:, : group.size])
            values = values.view(batch, -1, rows, columns).mul_(x[:, group.first : group.last + 1, None])
            out = values.sum(1) if out is None else out.add_(values.sum(1))
        assert out is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        weight, prev, x = ctx.saved_tensors
        want_weight, want_prev, want_x = ctx.needs_input_grad[:3]
        batch, rows, columns, dim = weight.shape[0], weight.shape[1], x.shape[2], x.shape[1]
        grad_weight, grad_x = [], []
        grad_prev = None
        # last group first: it reads all of prev, so its product *is* the gradient of prev; the others add to prefixes
        for group in reversed(_groups(dim, ctx.degree, GROUPS)):
            w, p = _padded_weight(weight, group, ctx.degree, dim), prev[:, : group.size]
            scaled = (grad[:, None] * x[:, group.first : group.last + 1, None]).reshape(batch, -1, columns)
            if want_weight:
                padded = torch.bmm(scaled, p.transpose(1, 2)).view(batch, -1, rows, group.size)
                for i, (_, _, size) in reversed(
                    list(enumerate(_blocks(dim, ctx.degree)[group.first : group.last + 1]))
                ):
                    grad_weight.append(padded[:, i, :, :size])
            if want_prev and grad_prev is None:
                grad_prev = torch.bmm(w.transpose(1, 2), scaled)
            elif grad_prev is not None and batch == 1:  # one batch: the prefix is contiguous, add in place
                grad_prev[:, : group.size].baddbmm_(w.transpose(1, 2), scaled)
            elif grad_prev is not None:  # (in place into a strided prefix, torch would loop over the batch)
                grad_prev[:, : group.size] += torch.bmm(w.transpose(1, 2), scaled)
            if want_x:
                values = torch.bmm(w, p).view(batch, -1, rows, columns)
                # in place saves a temporary, but a second derivative needs values unchanged
                values = values * grad[:, None] if torch.is_grad_enabled() else values.mul_(grad[:, None])
                grad_x.append(values.sum(2))
        return (
            torch.cat(grad_weight[::-1], 2) if grad_weight else None,
            grad_prev,
            torch.cat(grad_x[::-1], 1) if grad_x else None,
            None,
        )


def _distinct(prev: Tensor, x: Tensor) -> Tensor:
    """For degree 2, ``prev`` is ``x`` itself; dynamo refuses one tensor as two inputs of an autograd function, so
    pass a view of it instead (autograd adds the two gradients into ``x`` all the same)."""
    return prev.view_as(prev) if prev is x else prev


def colex_product(prev: Tensor, x: Tensor, degree: int) -> Tensor:
    """The degree-``degree`` monomials ``[B, count(d, degree), N]`` from those of degree ``degree - 1`` and ``x``.

    >>> x = torch.tensor([[[2.0], [3.0]]])  # B = 1, d = 2, N = 1
    >>> colex_product(x, x, 2)[0, :, 0].tolist()  # x0^2, x0 x1, x1^2
    [4.0, 6.0, 9.0]
    """
    if degree < 2 or prev.shape[1] != monomial_count(x.shape[1], degree - 1):
        raise ValueError(f"prev must hold the degree-{degree - 1} monomials of x")
    out: Tensor = _ColexProduct.apply(_distinct(prev, x), x, degree)
    return out


def colex_contract(weight: Tensor, prev: Tensor, x: Tensor, degree: int) -> Tensor:
    """``weight @ monomials`` for the degree-``degree`` monomials of ``x``, without building them.

    ``weight`` is ``[B, R, count(d, degree)]`` (rows against colex monomials), ``prev`` the degree-``degree - 1``
    monomials; the result is ``[B, R, N]``, equal to ``torch.bmm(weight, colex_product(prev, x, degree))``. Each
    ``l`` contributes ``x[:, l] * (weight[..., block_l] @ prev[:, :size_l])``: the same multiply-adds as the product,
    but the largest temporary is ``[B, R, N]`` instead of all monomials.

    >>> x = torch.tensor([[[2.0], [3.0]]])
    >>> colex_contract(torch.tensor([[[1.0, 0.0, 1.0]]]), x, x, 2).item()  # x0^2 + x1^2
    13.0
    """
    if degree < 2 or prev.shape[1] != monomial_count(x.shape[1], degree - 1):
        raise ValueError(f"prev must hold the degree-{degree - 1} monomials of x")
    out: Tensor = _ColexContract.apply(weight, _distinct(prev, x), x, degree)
    return out
