"""The minimal basis of equivariant symmetric polynomial maps ``V -> ir_out`` of one degree: what ``power`` learns.

MACE's symmetric contraction learns, per channel, a combination of coupled CG trees contracted with ``n`` copies of
the same feature ``x``. Only the symmetric part of a tree matters, so many trees give the same polynomial, and MACE's
weights are redundant. Here each polynomial is written on the *unique monomials* of ``x`` (``monomials.py``), which
symmetrizes it for free, and a basis of the span is extracted:

1. Coupled trees, in a fixed order: for each multiset of irreps ``a1 <= a2 <= ... <= an`` of ``V`` (positions in
   ``V``, lexicographic), each left-coupled chain ``((a1 x a2 -> i12) x a3 -> i123) ... -> ir_out`` with every
   allowed intermediate irrep (increasing). Each CG step is ``wigner_3j`` (e3nn's real basis). Trees over sorted
   multisets suffice: the symmetrization of a tree over any order of the same irreps is a combination of these.
2. Each tree is a polynomial ``p(x)_M = sum T[M, i1..in] x[i1] ... x[in]``; its coefficient on a monomial is the sum
   of ``T`` over the index tuples that sort to it.
3. Gram–Schmidt in tree order (twice, for stability), in the inner product ``<p, q> = E[<p(x), q(x)>] / (2L + 1)``
   for ``x ~ N(0, I)``; a tree whose residual is below ``1e-8`` of its norm is already in the span and skipped, and
   so is a tree of norm below ``1e-8`` (it vanishes: trees are built from unit-norm CG tensors, so a nonzero one has
   norm of order one). It
   stops once it holds as many elements as the multiplicity of ``ir_out`` in ``Sym^n(V)``, counted independently by
   characters (``characters.py``); running out of trees first is a bug and raises.

Normalization, and why. The basis is orthonormal in that inner product: ``E[|B_k(x)|^2] = 2L + 1`` and
``E[<B_j(x), B_k(x)>] = 0`` for ``j != k`` when the components of ``x`` are independent standard normals. That is
e3nn's "component" normalization: unit-variance inputs give outputs whose components have unit variance, and a sum of
``K`` such maps with independent unit-variance weights has variance ``K``, which ``power`` divides out (a factor
``1/sqrt(K)``, as e3nn's "element" path normalization does). Orthonormality also makes the weights well conditioned:
no two weights move the output in correlated directions for Gaussian inputs. Gram–Schmidt in a fixed tree order makes
the basis deterministic, and element ``k`` is a readable object: the tree ``trees[k]`` minus its projection on the
elements before it.

Evaluation. Each basis element is a combination of the kept trees, ``B = transform @ trees`` (lower triangular), so
``power`` evaluates the kept trees directly by CG couplings (``power_program.py``), far cheaper than a polynomial in
all monomials, and applies ``transform`` to the weights instead of to the values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import NamedTuple

import torch

from .characters import symmetric_power_multiplicity
from .constants import constant
from .irreps import Irrep, IrrepLike, Irreps, IrrepsLike
from .monomials import gaussian_gram, monomial_rank, monomial_table
from .threads import single_threaded
from .wigner import wigner_3j

Tensor = torch.Tensor

#: relative residual below which a tree counts as dependent on the elements before it (and norm below which it vanishes)
DEPENDENCE_TOLERANCE = 1e-8


class Tree(NamedTuple):
    """A left-coupled tree ``((x[c1] x x[c2] -> i2) x x[c3] -> i3) ...``: a polynomial of degree ``len(copies)``.

    ``copies`` are positions in the list of irreps of ``V`` (one per copy: ``2x1o`` is two copies), non-decreasing;
    ``chain`` the irreps after each coupling (``len(copies) - 1`` of them, the last one the output irrep).
    """

    copies: tuple[int, ...]
    chain: tuple[Irrep, ...]


class SymmetricBasis(NamedTuple):
    """Basis of the equivariant degree-``degree`` polynomial maps from ``irreps`` (one channel) to ``ir_out``.

    ``coefficients[k, M, r]`` is the coefficient of monomial ``r`` (``monomial_table(irreps.dim, degree)``, colex
    order) in component ``M`` of basis element ``k``; ``trees[k]`` is the coupled tree element ``k`` came from (its
    text: :func:`describe`), and element ``k`` is ``sum_j transform[k, j] * trees[j]`` (lower triangular).
    """

    irreps: Irreps
    degree: int
    ir_out: Irrep
    coefficients: Tensor  # [K, 2L+1, count] float64
    trees: tuple[Tree, ...]
    transform: Tensor  # [K, K] float64

    def __call__(self, x: Tensor) -> Tensor:
        """Evaluate every element on ``x`` of shape ``[..., irreps.dim]``: ``[..., K, 2L+1]`` (float64 reference)."""
        table = monomial_table(self.irreps.dim, self.degree)
        monomials = x[..., table.indices].prod(-1)
        return torch.einsum("kmr,...r->...km", self.coefficients.to(x.dtype), monomials)


class _Copy(NamedTuple):
    """One irrep of ``V`` and where its components start."""

    ir: Irrep
    offset: int


def _copies(irreps: Irreps) -> list[_Copy]:
    out, offset = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            out.append(_Copy(ir, offset))
            offset += ir.dim
    return out


def _chains(irs: tuple[Irrep, ...], target: Irrep) -> Iterator[tuple[Irrep, ...]]:
    """Every sequence of intermediate irreps of the left-coupled chain over ``irs`` that ends in ``target``."""

    def walk(current: Irrep, k: int) -> Iterator[tuple[Irrep, ...]]:
        if k == len(irs):
            if current == target:
                yield ()
            return
        rest = sum(ir.l for ir in irs[k + 1 :])
        for nxt in current * irs[k]:
            if abs(nxt.l - target.l) <= rest:  # the remaining couplings can still reach target
                for tail in walk(nxt, k + 1):
                    yield (nxt, *tail)

    yield from walk(irs[0], 1)


def _tree_polynomial(copies: tuple[_Copy, ...], chain: tuple[Irrep, ...], dim: int) -> Tensor:
    """Coefficients ``[2L+1, count]`` of the polynomial of one coupled tree, on the colex monomials of degree n."""
    tensor = torch.eye(copies[0].ir.dim, dtype=torch.float64)  # [i1, current]
    current = copies[0].ir
    for copy, nxt in zip(copies[1:], chain, strict=True):
        cg = wigner_3j(current.l, copy.ir.l, nxt.l, dtype=torch.float64)
        tensor = torch.einsum("...a,abc->...bc", tensor, cg)
        current = nxt
    ranges = [torch.arange(c.ir.dim) + c.offset for c in copies]
    tuples = torch.cartesian_prod(*ranges).view(-1, len(copies))
    rank = monomial_rank(tuples.sort(dim=1).values)
    out = torch.zeros(math.comb(dim + len(copies) - 1, len(copies)), current.dim, dtype=torch.float64)
    return out.index_add_(0, rank, tensor.reshape(-1, current.dim)).T


def describe(irreps: Irreps, tree: Tree) -> str:
    """The text of a tree, e.g. ``((0e x 1o -> 1o) x 1o -> 0e)``.

    >>> describe(Irreps("0e + 1o"), Tree((0, 1, 1), (Irrep("1o"), Irrep("0e"))))
    '((0e x 1o -> 1o) x 1o -> 0e)'
    """
    copies = _copies(irreps)
    text = str(copies[tree.copies[0]].ir)
    for c, nxt in zip(tree.copies[1:], tree.chain, strict=True):
        text = f"({text} x {copies[c].ir} -> {nxt})"
    return text


def coupled_trees(irreps: Irreps, degree: int, ir_out: Irrep) -> Iterator[tuple[Tree, Tensor]]:
    """The coupled trees of step 1, in order, each with its coefficients ``[2L+1, count]``."""
    copies = _copies(irreps)
    for chosen in itertools.combinations_with_replacement(range(len(copies)), degree):
        picked = tuple(copies[c] for c in chosen)
        irs = tuple(c.ir for c in picked)
        if math.prod(ir.p for ir in irs) != ir_out.p:
            continue
        for chain in _chains(irs, ir_out) if degree > 1 else ([()] if irs[0] == ir_out else []):
            yield Tree(chosen, chain), _tree_polynomial(picked, chain, irreps.dim)


@constant
def _basis(irreps: Irreps, degree: int, ir_out: Irrep) -> SymmetricBasis:
    wanted = symmetric_power_multiplicity(irreps, degree, ir_out)
    gram = gaussian_gram(irreps.dim, degree)

    def inner(u: Tensor, gv: Tensor) -> Tensor:
        return (u * gv).sum() / ir_out.dim

    kept: list[Tensor] = []  # [count, 2L+1] each, orthonormal
    kept_gram: list[Tensor] = []  # G @ kept[k]
    expansions: list[Tensor] = []  # kept[k] as a combination of the kept trees: [wanted]
    trees: list[Tree] = []
    for tree, polynomial in coupled_trees(irreps, degree, ir_out):
        if len(kept) == wanted:
            break
        v = polynomial.T.contiguous()
        e = torch.zeros(wanted, dtype=torch.float64)
        e[len(kept)] = 1.0
        norm0 = inner(v, gram.apply(v)).sqrt()
        for _ in range(2):  # Gram–Schmidt twice: one pass loses orthogonality when v is nearly dependent
            for q, gq, eq in zip(kept, kept_gram, expansions, strict=True):
                overlap = inner(v, gq)
                v, e = v - overlap * q, e - overlap * eq
        gv = gram.apply(v)
        norm = inner(v, gv).sqrt()
        # a vanishing tree (an antisymmetric coupling of a copy with itself, like v x v -> 1e) is rounding noise of
        # norm ~1e-17: only its absolute norm tells it from an independent one
        if norm0 > DEPENDENCE_TOLERANCE and norm > DEPENDENCE_TOLERANCE * norm0:
            kept.append(v / norm)
            kept_gram.append(gv / norm)
            expansions.append(e / norm)
            trees.append(tree)
    if len(kept) != wanted:
        raise ArithmeticError(
            f"found {len(kept)} independent trees for {ir_out} in Sym^{degree}({irreps}), expected {wanted}"
        )
    count = monomial_table(irreps.dim, degree).size
    coefficients = torch.stack(kept).transpose(1, 2) if kept else torch.zeros(0, ir_out.dim, count, dtype=torch.float64)
    transform = torch.stack(expansions) if expansions else torch.zeros(0, 0, dtype=torch.float64)
    return SymmetricBasis(irreps, degree, ir_out, coefficients.contiguous(), tuple(trees), transform)


def symmetric_basis(irreps: IrrepsLike, degree: int, ir_out: IrrepLike) -> SymmetricBasis:
    """The orthonormal basis of equivariant degree-``degree`` maps ``V -> ir_out`` (cached; do not modify it).

    ``irreps`` is ``V``, the irreps of one channel (``0e + 1o + 2e + 3o`` for MACE's ``A`` features). The number of
    elements is ``symmetric_power_multiplicity(irreps, degree, ir_out)``, possibly zero.

    >>> basis = symmetric_basis("0e + 1o + 2e + 3o", 2, "0e")
    >>> basis.coefficients.shape, describe(basis.irreps, basis.trees[1])
    (torch.Size([4, 1, 136]), '(1o x 1o -> 0e)')
    """
    if not isinstance(degree, int) or degree < 1:
        raise ValueError(f"the degree must be a positive integer, got {degree!r}")
    irreps = Irreps(irreps)
    if irreps.dim == 0:
        raise ValueError("a symmetric power needs a non-empty representation")
    with single_threaded():
        return _basis(irreps, degree, Irrep(ir_out))
