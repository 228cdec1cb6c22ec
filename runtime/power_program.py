"""How ``power`` is evaluated: the kept coupled trees of every basis, as a short program of CG couplings.

Every basis element of ``symmetric_basis`` is a combination of *kept trees* ``((x[c1] x x[c2] -> i2) x x[c3] -> i3)
...``, so the output of ``power`` is ``sum_j v_j * tree_j(x)`` for tree weights ``v = weights @ transform`` (per
channel, per species). Evaluating the trees by their CG couplings costs a few hundred multiply-adds per channel for
MACE's case, where a polynomial in all monomials of ``x`` costs ``(2L+1) x 816`` per output irrep. The program:

1. Leaves are the irreps of ``V`` (one per copy). Trees share prefixes, so the prefixes form a trie: each trie node
   below the leaves is ``couple(parent, x[c]) -> i`` and is computed once. The nodes of one ``(parent, copy)`` pair
   are one :class:`Coupling` (one product, several output irreps).
2. The last coupling of a tree is never computed on its own. Trees that end in the same coupling ``i x x[c] -> L``
   meet their weights *before* it: ``sum_t v_t * node_t`` (a weighted sum of their parents), then one coupling. The
   last couplings into one output irrep ``L`` from one copy ``c`` are one :class:`Final` (the weighted sums of every
   intermediate irrep ``i`` side by side).
3. Trees of degree 1 are a copy of ``x`` itself: ``out += v_t * x[c]`` (:class:`Direct`).

Every coupling is one bilinear map ``r[R] = sum_{p, a} F[R, p, a] u[p] x[a]`` (``F`` from ``wigner_3j``, exact),
computed in whichever of three orders has the smallest intermediate (:func:`order`): ``"outer"``, the outer product
``u x x`` then a matrix product (``P * A`` rows); ``"x"``, ``F @ x`` then the product with ``u`` summed over ``p``
(``R * P`` rows); ``"u"``, ``F @ u`` then the product with ``x`` summed over ``a`` (``R * A`` rows).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from .irreps import Irrep, Irreps
from .power_basis import Tree, symmetric_basis
from .wigner import wigner_3j

Tensor = torch.Tensor


class Coupling(NamedTuple):
    """Trie nodes ``children`` (value ids) = ``couple(values[parent], x[copy])``, one output irrep each."""

    parent: int
    parent_irrep: Irrep
    copy: int
    children: tuple[int, ...]
    irreps: tuple[Irrep, ...]  # of the children
    order: str  # "outer", "x" or "u" (see the module docstring)


class Final(NamedTuple):
    """``out[block] += couple(u, x[copy]) -> L`` with ``u`` the weighted sums ``sum_t v[tree_t] * values[node_t]``.

    ``terms[i]`` lists the ``(value id, tree)`` pairs summed into the part of ``u`` of irrep ``irreps[i]``.
    """

    copy: int
    block: int
    irreps: tuple[Irrep, ...]
    terms: tuple[tuple[tuple[int, int], ...], ...]
    order: str


class Direct(NamedTuple):
    """``out[block] += v[tree] * x[copy]``: a tree of degree 1."""

    copy: int
    block: int
    tree: int


class PowerProgram(NamedTuple):
    """The evaluation of ``power(V, nu) -> blocks`` for one channel; independent of channels, dtype and device.

    Value ids ``0 .. len(leaves) - 1`` are the copies of ``V``, the others trie nodes; ``couplings`` compute them,
    parents first.
    Trees are numbered like the weight rows: by output block, then degree ``k = 1..nu``, then basis element.
    """

    irreps: Irreps  # V: one copy per irrep
    nu: int
    blocks: tuple[Irrep, ...]
    counts: tuple[tuple[int, ...], ...]  # counts[b][k - 1]: basis elements (= kept trees) of block b at degree k
    leaves: tuple[Irrep, ...]
    values: int  # leaves and trie nodes
    couplings: tuple[Coupling, ...]
    finals: tuple[Final, ...]
    directs: tuple[Direct, ...]
    transform: Tensor  # [trees, trees] float64: tree weights = weights @ transform (normalization folded in)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Where each copy of ``V`` starts in a channel's components."""
        return tuple(sum(ir.dim for ir in self.leaves[:c]) for c in range(len(self.leaves)))

    def weight_rows(self, block: int, degree: int) -> slice:
        """The rows of the weights (per channel) of one output block and degree."""
        start = sum(map(sum, self.counts[:block])) + sum(self.counts[block][: degree - 1])
        return slice(start, start + self.counts[block][degree - 1])


@functools.cache
def power_program(irreps: Irreps, nu: int, blocks: tuple[Irrep, ...]) -> PowerProgram:
    """The program of ``power(irreps, nu) -> blocks`` (cached). ``irreps`` has multiplicity one per entry.

    >>> p = power_program(Irreps("0e + 1o"), 2, (Irrep("0e"),))
    >>> p.counts, len(p.couplings), len(p.finals), len(p.directs)  # s, s^2 and |v|^2 need no trie node
    (((1, 2),), 0, 2, 1)
    """
    counts = tuple(tuple(len(symmetric_basis(irreps, k, ir).trees) for k in range(1, nu + 1)) for ir in blocks)
    for ir, count in zip(blocks, counts, strict=True):
        if not sum(count):
            raise ValueError(f"no symmetric product of {irreps} of order 1..{nu} contains {ir}")
    leaves = tuple(ir for _, ir in irreps)
    total = sum(map(sum, counts))
    transform = torch.zeros(total, total, dtype=torch.float64)
    trees: list[tuple[int, int, Tree]] = []  # (block, tree number, tree)
    for b, ir in enumerate(blocks):
        for k in range(1, nu + 1):
            basis = symmetric_basis(irreps, k, ir)
            rows = slice(len(trees), len(trees) + len(basis.trees))
            # element j of the normalized basis is sum_t transform[j, t] tree_t, divided by sqrt(K_b): see power.py
            transform[rows, rows] = basis.transform / math.sqrt(sum(counts[b]))
            trees += [(b, len(trees) + t, tree) for t, tree in enumerate(basis.trees)]
    ids: dict[Tree, int] = {Tree((c,), ()): c for c in range(len(leaves))}  # trie nodes by their prefix
    groups: dict[tuple[int, int], list[tuple[int, Irrep]]] = {}  # (parent, copy) -> children (value id, irrep)

    def node(prefix: Tree) -> int:
        if prefix not in ids:
            parent = node(Tree(prefix.copies[:-1], prefix.chain[:-1]))
            ids[prefix] = len(ids)
            groups.setdefault((parent, prefix.copies[-1]), []).append((ids[prefix], prefix.chain[-1]))
        return ids[prefix]

    finals: dict[tuple[int, int], dict[Irrep, list[tuple[int, int]]]] = {}  # (copy, block) -> irrep i -> terms
    directs = []
    for b, t, tree in trees:
        if len(tree.copies) == 1:
            directs.append(Direct(tree.copies[0], b, t))
            continue
        parent = node(Tree(tree.copies[:-1], tree.chain[:-1]))
        ir_parent = tree.chain[-2] if len(tree.chain) > 1 else leaves[tree.copies[0]]
        finals.setdefault((tree.copies[-1], b), {}).setdefault(ir_parent, []).append((parent, t))
    couplings = []
    for (parent, copy), children in sorted(groups.items(), key=lambda item: item[1][0][0]):  # parents first
        ir_parent, irs = _irrep_of(parent, ids, leaves), tuple(ir for _, ir in children)
        how = order(sum(ir.dim for ir in irs), ir_parent.dim, leaves[copy].dim)
        couplings.append(Coupling(parent, ir_parent, copy, tuple(v for v, _ in children), irs, how))
    final_list = []
    for (copy, b), by_irrep in sorted(finals.items()):
        irs = tuple(sorted(by_irrep))
        terms = tuple(tuple(by_irrep[ir]) for ir in irs)
        width = sum(ir.dim for ir in irs)
        final_list.append(Final(copy, b, irs, terms, order(blocks[b].dim, width, leaves[copy].dim)))
    return PowerProgram(
        irreps, nu, blocks, counts, leaves, len(ids), tuple(couplings), tuple(final_list), tuple(directs), transform
    )


def order(R: int, P: int, A: int) -> str:
    """The order of a bilinear step with the smallest intermediate (ties: outer, then x, then u).

    >>> order(3, 21, 7)  # (2e+3e+4e) x 3o -> 1o: F @ u first, [3 * 7] rows instead of [21 * 7] or [3 * 21]
    'u'
    """
    sizes = {"outer": P * A, "x": R * P, "u": R * A}
    return min(sizes, key=sizes.__getitem__)


def _irrep_of(value: int, ids: dict[Tree, int], leaves: tuple[Irrep, ...]) -> Irrep:
    prefix = next(prefix for prefix, v in ids.items() if v == value)
    return prefix.chain[-1] if prefix.chain else leaves[prefix.copies[0]]


def coupling_tensor(ir_u: tuple[Irrep, ...], ir_x: Irrep, ir_out: tuple[Irrep, ...]) -> Tensor:
    """``F [R, P, A]`` of a bilinear step (float64): blocks ``wigner_3j(i, l_x, o)`` for the pairs it couples.

    A :class:`Coupling` has one ``u`` irrep and several outputs; a :class:`Final` several ``u`` irreps and one output.
    """
    pairs = [(i, o) for i in ir_u for o in ir_out]
    table = torch.zeros(sum(o.dim for o in ir_out), sum(i.dim for i in ir_u), ir_x.dim, dtype=torch.float64)
    for i, o in pairs:
        p0 = sum(ir.dim for ir in ir_u[: ir_u.index(i)])
        r0 = sum(ir.dim for ir in ir_out[: ir_out.index(o)])
        table[r0 : r0 + o.dim, p0 : p0 + i.dim] = wigner_3j(i.l, ir_x.l, o.l, dtype=torch.float64).permute(2, 0, 1)
    return table
