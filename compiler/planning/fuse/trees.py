"""Coupling trees of a ``fuse`` vertex: which trees the compiler considers, and how they are written.

A tree is a nested pair of input positions (:data:`fdg.runtime.fusion_tables.Tree`), ``((0, 1), 2)``.  Mirroring a
node (``(1, 0)`` for ``(0, 1)``) changes signs of paths, never the cost, so the candidates are the trees up to
mirroring, children ordered so that the left one holds the smaller input: ``(2n - 3)!!`` of them (3 for three
inputs, 15 for four, 105 for five).  Up to :data:`MAX_ENUMERATED` they are all priced; beyond, the candidates are
the left-to-right tree and one built greedily (merge the two subtrees whose product is smallest, like
``opt_einsum``'s greedy path), because pricing a tree builds its layout and that grows quickly with the inputs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence

from fdg.runtime import Irrep, Irreps
from fdg.runtime.fusion_paths import Tree

#: most trees priced exhaustively (every tree of four inputs); more inputs get the greedy and left-to-right trees
MAX_ENUMERATED = 15


def left_to_right(n: int) -> Tree:
    """``(((0, 1), 2), ...)``: the tree whose paths the weights of a fuse belong to when no tree is written.

    >>> left_to_right(4)
    (((0, 1), 2), 3)
    """
    tree: Tree = 0
    for k in range(1, n):
        tree = (tree, k)
    return tree


def all_trees(leaves: Sequence[int]) -> Iterator[Tree]:
    """Every binary tree over ``leaves`` up to mirroring, the left child holding the smallest leaf.

    >>> list(all_trees([0, 1, 2]))
    [((0, 1), 2), ((0, 2), 1), (0, (1, 2))]
    """
    if len(leaves) == 1:
        yield leaves[0]
        return
    first, rest = leaves[0], list(leaves[1:])
    # the left part holds the first leaf and a proper subset of the rest, largest subsets first (left to right first)
    for size in reversed(range(len(rest))):
        for chosen in itertools.combinations(rest, size):
            left = [first, *chosen]
            right = [leaf for leaf in rest if leaf not in chosen]
            for a in all_trees(left):
                for b in all_trees(right):
                    yield (a, b)


def count_trees(n: int) -> int:
    """``(2n - 3)!!``, the number of trees :func:`all_trees` yields for ``n`` leaves."""
    total = 1
    for k in range(3, 2 * n - 2, 2):
        total *= k
    return total


def greedy_tree(inputs: Sequence[Irreps], muls: Sequence[int], lmax: int | None) -> Tree:
    """A cheap tree for many inputs: repeatedly couple the two subtrees with the smallest outer product.

    A subtree's size is the number of components its stacked value holds per row (channels times the dimensions of
    every irrep it can carry, within ``lmax``); coupling two small, multiplicity-one subtrees first keeps the
    work per channel down, which is what the cost model rewards.
    """
    parts: list[tuple[Tree, Counter[Irrep], int]] = [
        (k, Counter(ir for _, ir in irreps), mul) for k, (irreps, mul) in enumerate(zip(inputs, muls, strict=True))
    ]
    while len(parts) > 1:
        sizes = {(i, j): _size(parts[i], parts[j]) for i, j in itertools.combinations(range(len(parts)), 2)}
        i, j = min(sizes, key=sizes.__getitem__)  # ties: the first pair, so the result is deterministic
        (ta, ca, ma), (tb, cb, mb) = parts[i], parts[j]
        merged: Counter[Irrep] = Counter()
        for a, na in ca.items():
            for b, nb in cb.items():
                for ir in a * b:
                    if lmax is None or ir.l <= lmax:
                        merged[ir] += na * nb
        parts = [p for k, p in enumerate(parts) if k not in (i, j)] + [((ta, tb), merged, max(ma, mb))]
    return parts[0][0]


def _size(a: tuple[Tree, Counter[Irrep], int], b: tuple[Tree, Counter[Irrep], int]) -> int:
    """Components per row of the outer product of two subtrees' values."""
    return max(a[2], b[2]) * _dim(a[1]) * _dim(b[1])


def _dim(counts: Counter[Irrep]) -> int:
    return sum(n * ir.dim for ir, n in counts.items())


def candidates(inputs: Sequence[Irreps], muls: Sequence[int], lmax: int | None) -> tuple[list[Tree], bool]:
    """The trees to price, and whether they are all of them (else: left-to-right and greedy)."""
    n = len(inputs)
    if count_trees(n) <= MAX_ENUMERATED:
        return list(all_trees(list(range(n)))), True
    found = [left_to_right(n), greedy_tree(inputs, muls, lmax)]
    return list(dict.fromkeys(found)), False


def spell(tree: Tree, labels: Sequence[str]) -> str:
    """A tree in the syntax of ``tree = ...``, with the inputs as written.

    >>> spell(((0, 1), 2), ["a", "b", "h[src]"])
    '((a, b), h[src])'
    """
    if isinstance(tree, int):
        return labels[tree]
    return f"({spell(tree[0], labels)}, {spell(tree[1], labels)})"
