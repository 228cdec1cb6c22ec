"""Monomials in the ``d`` components of a vector, in colex order, and their Gaussian moments.

A degree-``n`` monomial ``x[i1] x[i2] ... x[in]`` is named by its sorted indices ``i1 <= i2 <= ... <= in``; there are
``C(d + n - 1, n)`` of them. They are listed in *colex* order: by last index first, then by the monomial of the first
``n - 1`` indices, recursively. Two consequences make this the right order for evaluation:

* every degree-``n`` monomial is a degree-``(n-1)`` monomial (its *parent*) times one component (its *last* index),
  so all monomials of degree ``n`` are ``previous[parent] * x[last]``: two gathers and one product;
* the monomials whose indices are all ``< k`` form a prefix of the list, so a contraction can stop early.

The position of a sorted index tuple is ``sum_k C(i_k + k - 1, k)`` (``k = 1..n``), the rank of the strictly
increasing combination ``i_k + k - 1`` in the combinatorial number system.

The Gaussian inner product ``<p, q> = E[p(x) q(x)]`` for ``x ~ N(0, I_d)`` is what fixes the normalization of the
symmetric-power basis. Its Gram matrix on monomials holds the moments ``E[x^a] = prod_i (a_i - 1)!!`` (zero when an
exponent is odd), so two monomials meet only when their exponents have the same parities: the matrix is block
diagonal over parity classes, very sparse, and built exactly from integers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .characters import monomial_count
from .constants import constant

Tensor = torch.Tensor


class MonomialTable(NamedTuple):
    """The degree-``degree`` monomials in ``dim`` variables, in colex order.

    ``indices[r]`` are the sorted component indices of monomial ``r``; for ``degree >= 2``, monomial ``r`` is monomial
    ``parent[r]`` of degree ``degree - 1`` times component ``last[r]`` (for ``degree == 1``, ``parent`` is all zeros:
    the empty monomial 1).
    """

    dim: int
    degree: int
    indices: Tensor  # [count, degree] int64
    parent: Tensor  # [count] int64
    last: Tensor  # [count] int64

    @property
    def size(self) -> int:
        """Number of monomials."""
        return self.indices.shape[0]


@constant
def monomial_table(dim: int, degree: int) -> MonomialTable:
    """The colex table of degree-``degree`` monomials in ``dim`` variables (cached; do not modify its tensors).

    >>> monomial_table(3, 2).indices.tolist()
    [[0, 0], [0, 1], [1, 1], [0, 2], [1, 2], [2, 2]]
    """
    if dim < 1 or degree < 1:
        raise ValueError(f"monomials need dim >= 1 and degree >= 1, got dim={dim}, degree={degree}")
    if degree == 1:
        index = torch.arange(dim)
        return MonomialTable(dim, 1, index[:, None], torch.zeros(dim, dtype=torch.int64), index)
    previous = monomial_table(dim, degree - 1)
    parents, lasts = [], []
    for last in range(dim):
        # the parents whose indices are all <= last: a prefix of the previous list, by the colex order
        size = monomial_count(last + 1, degree - 1)
        parents.append(torch.arange(size))
        lasts.append(torch.full((size,), last))
    parent, last_index = torch.cat(parents), torch.cat(lasts)
    indices = torch.cat([previous.indices[parent], last_index[:, None]], dim=1)
    return MonomialTable(dim, degree, indices, parent, last_index)


def monomial_rank(sorted_indices: Tensor) -> Tensor:
    """Colex position of each row of ``sorted_indices`` (``[..., degree]``, non-decreasing along the last axis).

    >>> monomial_rank(torch.tensor([[0, 2], [2, 2]])).tolist()
    [3, 5]
    """
    degree = sorted_indices.shape[-1]
    k = torch.arange(1, degree + 1)
    top = int(sorted_indices.max()) + degree if sorted_indices.numel() else degree
    binomial = torch.tensor([[math.comb(j, i) for i in range(degree + 1)] for j in range(top + 1)])
    return binomial[sorted_indices + k - 1, k].sum(-1)


def exponents(table: MonomialTable) -> Tensor:
    """``[count, dim]`` exponent of each variable in each monomial."""
    out = torch.zeros(table.size, table.dim, dtype=torch.int64)
    return out.scatter_add_(1, table.indices, torch.ones_like(table.indices))


class BlockGram(NamedTuple):
    """A symmetric ``[size, size]`` matrix, block diagonal after a permutation of its rows and columns.

    The blocks of one size ``S`` are stacked: ``(index [n, S], blocks [n, S, S])``, where block ``c`` is the matrix
    restricted to the rows (and columns) ``index[c]``. Every row is in exactly one block.
    """

    size: int
    groups: tuple[tuple[Tensor, Tensor], ...]

    def apply(self, vectors: Tensor) -> Tensor:
        """``G @ vectors`` for ``vectors`` of shape ``[size, k]``."""
        out = torch.empty_like(vectors)
        for index, blocks in self.groups:
            out[index] = torch.bmm(blocks, vectors[index])
        return out

    def to_dense(self) -> Tensor:
        dense = torch.zeros(self.size, self.size, dtype=torch.float64)
        for index, blocks in self.groups:
            dense[index[:, :, None], index[:, None, :]] = blocks
        return dense


@constant
def gaussian_gram(dim: int, degree: int) -> BlockGram:
    """``E[m_r(x) m_s(x)]`` for ``x ~ N(0, I_dim)`` and all pairs of degree-``degree`` monomials (float64, cached).

    Two monomials have a nonzero moment together only if their exponents have the same parities, so the matrix is
    block diagonal by parity class.

    >>> gaussian_gram(2, 2).to_dense().tolist()  # x0^2, x0 x1, x1^2
    [[3.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0]]
    """
    powers = exponents(monomial_table(dim, degree))
    _, cls = torch.unique(powers % 2, dim=0, return_inverse=True)
    order = torch.argsort(cls, stable=True)
    sizes = torch.bincount(cls)
    starts = torch.cumsum(sizes, 0) - sizes
    # (e - 1)!! for even e, the Gaussian moment E[x^e]; odd e never occurs within a parity class.
    double_factorial = torch.ones(2 * degree + 1, dtype=torch.float64)
    for e in range(2, 2 * degree + 1, 2):
        double_factorial[e] = double_factorial[e - 2] * (e - 1)
    groups = []
    for size in torch.unique(sizes).tolist():
        classes = (sizes == size).nonzero()[:, 0]
        index = order[starts[classes][:, None] + torch.arange(size)]  # [n, S]
        p = powers[index]  # [n, S, dim]
        groups.append((index, double_factorial[p[:, :, None, :] + p[:, None, :, :]].prod(-1)))
    return BlockGram(powers.shape[0], tuple(groups))
