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
   norm of order one). It stops once it holds as many elements as the multiplicity of ``ir_out`` in ``Sym^n(V)``,
   counted independently by characters (``characters.py``); running out of trees first is a bug and raises.

   Most trees depend on earlier ones, and the exact test costs a product with the Gaussian moment matrix over every
   monomial. So each tree is first screened by its values at ``2K + 16`` fixed generic points (``K`` the basis
   size), 64 trees at a time. A dependent tree is dependent at any points; at that many generic points an
   independent one almost surely is not, so a tree dependent there (relative residual below ``1e-10``) is skipped,
   and only the others (about ``K``) get the exact test, which decides. A wrong skip would leave the basis short,
   which raises. The basis is the one the exact test alone gives, at a fraction of the cost (order
   8 over ``0e + 1o + 2e`` in about 15 s, where testing every tree exactly took over 14 minutes).

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
from .monomials import BlockGram, gaussian_gram, monomial_rank, monomial_table
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


def coupled_trees(irreps: Irreps, degree: int, ir_out: Irrep) -> Iterator[Tree]:
    """The coupled trees of step 1, in order (trees over one multiset of copies are consecutive)."""
    copies = _copies(irreps)
    for chosen in itertools.combinations_with_replacement(range(len(copies)), degree):
        irs = tuple(copies[c].ir for c in chosen)
        if math.prod(ir.p for ir in irs) != ir_out.p:
            continue
        for chain in _chains(irs, ir_out) if degree > 1 else ([()] if irs[0] == ir_out else []):
            yield Tree(chosen, chain)


class _Span:
    """Gram–Schmidt in order, twice, in the inner product ``<u, v> = u . (G v) / scale``. Holds the orthonormal
    elements ``q``, ``G q`` and each element as a combination of the added vectors (``expansions``, lower triangular).
    """

    def __init__(self, capacity: int, size: int, scale: int, gram: BlockGram) -> None:
        self.q = torch.zeros(capacity, size, dtype=torch.float64)
        self.gq = torch.zeros_like(self.q)
        self.expansions = torch.zeros(capacity, capacity, dtype=torch.float64)
        self.count, self.scale, self.gram = 0, scale, gram

    def add_if_independent(self, v: Tensor) -> bool:
        """Add ``v`` unless it lies in the span (its residual is below ``DEPENDENCE_TOLERANCE`` of its norm)."""
        gv = self.gram.apply(v.view(-1, self.scale)).view(-1)
        e = torch.zeros(len(self.q), dtype=torch.float64)
        e[self.count] = 1.0
        norm0 = (v @ gv / self.scale).sqrt()
        q, gq, eq = self.q[: self.count], self.gq[: self.count], self.expansions[: self.count]
        for _ in range(2):  # one pass loses orthogonality when v is nearly dependent
            overlap = gq @ v / self.scale  # <q_k, v>, G symmetric
            v, gv, e = v - overlap @ q, gv - overlap @ gq, e - overlap @ eq
        norm = (v @ gv / self.scale).sqrt()
        if not _independent(norm0, norm, DEPENDENCE_TOLERANCE):
            return False
        self.q[self.count], self.gq[self.count], self.expansions[self.count] = v / norm, gv / norm, e / norm
        self.count += 1
        return True


def _independent(norm0: Tensor, norm: Tensor, tolerance: float) -> Tensor:
    # a vanishing tree (an antisymmetric coupling of a copy with itself, like v x v -> 1e) is rounding noise of
    # norm ~1e-17: only its absolute norm tells it from an independent one
    return (norm0 > tolerance) & (norm > tolerance * norm0)


class _TreeSampler:
    """Values of coupled trees at fixed points ``[N, dim]``, reusing the chain prefixes of consecutive trees."""

    def __init__(self, irreps: Irreps, points: Tensor) -> None:
        self.pieces = [points[:, c.offset : c.offset + c.ir.dim] for c in _copies(irreps)]
        self.irs = [c.ir for c in _copies(irreps)]
        self.copies: tuple[int, ...] = ()
        self.prefixes: dict[tuple[Irrep, ...], Tensor] = {}

    def __call__(self, tree: Tree) -> Tensor:
        if tree.copies != self.copies:
            self.copies, self.prefixes = tree.copies, {(): self.pieces[tree.copies[0]]}
        for k in range(len(tree.chain)):
            if tree.chain[: k + 1] not in self.prefixes:
                previous = self.irs[tree.copies[0]] if k == 0 else tree.chain[k - 1]
                c = tree.copies[k + 1]
                cg = wigner_3j(previous.l, self.irs[c].l, tree.chain[k].l, dtype=torch.float64)
                value = self.prefixes[tree.chain[:k]]
                pairs = (value[:, :, None] * self.pieces[c][:, None, :]).flatten(1)
                self.prefixes[tree.chain[: k + 1]] = pairs @ cg.flatten(0, 1)
        return self.prefixes[tree.chain].reshape(-1)


#: relative residual of a tree's values at the sample points below which it counts as dependent, without the exact test
SAMPLE_TOLERANCE = 1e-10
#: trees screened together at the sample points
CHUNK = 64


@constant
def _basis(irreps: Irreps, degree: int, ir_out: Irrep) -> SymmetricBasis:
    wanted = symmetric_power_multiplicity(irreps, degree, ir_out)
    count = monomial_table(irreps.dim, degree).size
    exact = _Span(wanted, count * ir_out.dim, ir_out.dim, gaussian_gram(irreps.dim, degree))
    # Most trees depend on earlier ones. Their values at generic points show that for a few hundred numbers each,
    # where the exact test costs a Gaussian moment matrix over every monomial; only trees independent there are
    # tested exactly. Points of unit norm: every tree is homogeneous of the same degree, so scaling a point changes no
    # dependence, and keeps the values of order one.
    points = torch.randn(2 * wanted + 16, irreps.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sample = _TreeSampler(irreps, points / points.norm(dim=1, keepdim=True))
    screened = torch.zeros(wanted, len(points) * ir_out.dim, dtype=torch.float64)  # orthonormal, one per kept tree
    copies = _copies(irreps)
    trees: list[Tree] = []
    remaining = coupled_trees(irreps, degree, ir_out)
    while len(trees) < wanted and (chunk := list(itertools.islice(remaining, CHUNK))):
        values = torch.stack([sample(tree) for tree in chunk])
        norms0 = values.norm(dim=1) / math.sqrt(values.shape[1])  # root mean square
        q = screened[: len(trees)]
        for _ in range(2):  # Gram–Schmidt twice against the kept trees, the whole chunk at once
            values = values - (values @ q.T) @ q
        start = 0
        while len(trees) < wanted:
            norms = values[start:].norm(dim=1) / math.sqrt(values.shape[1])
            hits = _independent(norms0[start:], norms, SAMPLE_TOLERANCE).nonzero()
            if not len(hits):
                break
            start += int(hits[0])
            tree = chunk[start]
            polynomial = _tree_polynomial(tuple(copies[c] for c in tree.copies), tree.chain, irreps.dim)
            if exact.add_if_independent(polynomial.T.reshape(-1)):
                new = values[start] / values[start].norm()
                screened[len(trees)] = new
                trees.append(tree)
                for _ in range(2):  # the rest of the chunk against the new element
                    values[start + 1 :] -= (values[start + 1 :] @ new)[:, None] * new
            start += 1
    if len(trees) != wanted:
        raise ArithmeticError(
            f"found {len(trees)} independent trees for {ir_out} in Sym^{degree}({irreps}), expected {wanted}"
        )
    coefficients = exact.q.view(wanted, count, ir_out.dim).transpose(1, 2)
    return SymmetricBasis(irreps, degree, ir_out, coefficients.contiguous(), tuple(trees), exact.expansions)


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
