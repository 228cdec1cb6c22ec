"""The coupling paths of the n-ary fusion vertex ``fuse`` along a tree (the tables are in ``fusion_tables.py``).

``fuse(x0, x1, ...) -> OUT`` couples one irrep of every input, pairwise along a binary *tree* over the inputs (a
nested pair of input positions, ``((0, 1), 2)``), into an irrep of ``OUT``.  A *path* picks one irrep of each input,
an irrep at every internal node (triangle and parity rules at every CG vertex) and an output irrep; its value is the
chain of ``wigner_3j`` tensors along the tree.  Every node of the tree holds, per channel, the *stacked* vector of
all its irreps, one block per choice of everything below it (an :class:`Entry`); a leaf's stacked vector is one
channel of its input.  Entries that no path uses are pruned, so every table below is as small as it can be.

Paths are ordered like e3nn's instruction lists, nested loops from the outside in: the irrep of each input (in input
order), then the degree at each internal node (bottom-up), then the output irrep.  That order is the weight layout.

Normalization (e3nn's ``component`` / ``element`` spirit): with independent inputs whose components have unit
variance and unit-variance weights, every output component has unit variance.  A chain of Frobenius-normalized 3j
tensors has squared norm ``prod 1 / (2 l + 1)`` over the internal nodes below the root, spread evenly over the
``2 L + 1`` output components, so a path is scaled by
``alpha = sqrt((2 L + 1) * prod (2 l + 1) / N)``, ``N`` the number of paths into its output irrep.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple, TypeAlias

from .irreps import Irrep, Irreps

Tree: TypeAlias = int | tuple["Tree", "Tree"]

#: most entries one node of a tree may hold, and most paths (guards against trees whose intermediates explode)
MAX_ENTRIES = 200_000
MAX_PATHS = 10_000


class FuseSpec(NamedTuple):
    """What the tables of one fuse vertex are built from; generated modules spell it as a literal.

    ``inputs`` and ``outputs`` are the irreps of *one channel* (``"0e+1o+2e"``): fuse is channel-wise, so the
    multiplicities do not change the tables.  ``lmax`` caps the degree of the irreps at internal nodes.
    """

    inputs: tuple[str, ...]
    outputs: str
    tree: Tree
    lmax: int | None = None

    @classmethod
    def of(cls, inputs: Sequence[Irreps], outputs: Irreps, tree: Tree, lmax: int | None = None) -> FuseSpec:
        """The spec of a fuse of wires of these irreps (their multiplicities dropped).

        >>> FuseSpec.of([Irreps("16x0e+16x1o"), Irreps("1o")], Irreps("16x1e"), (0, 1))
        FuseSpec(inputs=('0e+1o', '1o'), outputs='1e', tree=(0, 1), lmax=None)
        """
        return cls(tuple(_channel(i) for i in inputs), _channel(outputs), tree, lmax)


def _channel(irreps: Irreps) -> str:
    return "+".join(str(ir) for _, ir in irreps)


class Entry(NamedTuple):
    """One irrep held by a node, for one choice of everything below it."""

    left: int  # entry of the left child; for a leaf, the position of the irrep in its input
    right: int  # entry of the right child; -1 for a leaf
    ir: Irrep
    offset: int  # first component in the node's stacked vector


class Node(NamedTuple):
    tree: Tree
    left: int  # index of the child node; -1 for a leaf
    right: int
    entries: tuple[Entry, ...]  # empty for the root, whose blocks are the paths
    dim: int


class Path(NamedTuple):
    left: int  # entries of the root's children
    right: int
    i_out: int
    leaves: tuple[int, ...]  # irrep of each input, input order
    inner: tuple[int, ...]  # entry at each internal node below the root (nodes in order)
    degrees: tuple[int, ...]  # the degrees of those entries
    alpha: float
    offset: int  # its block in the root's stacked value (one block of 2L+1 per path)
    out: int  # offset of its output irrep in one output channel


class Layout(NamedTuple):
    """All paths of one fuse vertex along one tree."""

    nodes: tuple[Node, ...]  # the leaves (input order), then the internal nodes bottom-up; the root is last
    paths: tuple[Path, ...]
    outputs: tuple[Irrep, ...]
    out_dim: int  # one output channel
    dropped: tuple[Irrep, ...]  # irreps at internal nodes that paths would use but lmax removes

    @property
    def root_dim(self) -> int:
        """Components of the root's stacked value: one output block per path."""
        return self.nodes[-1].dim

    def degree_triples(self) -> set[tuple[int, int, int]]:
        """The degrees ``(l_left, l_right, l)`` of every coupling the tree makes: each internal entry, each path."""
        found = set()
        for node in self.nodes:
            if node.left >= 0 and node.entries:
                left, right = self.nodes[node.left].entries, self.nodes[node.right].entries
                found |= {(left[e.left].ir.l, right[e.right].ir.l, e.ir.l) for e in node.entries}
        root = self.nodes[-1]
        left, right = self.nodes[root.left].entries, self.nodes[root.right].entries
        found |= {(left[p.left].ir.l, right[p.right].ir.l, self.outputs[p.i_out].l) for p in self.paths}
        return found

    @property
    def leaf_count(self) -> int:
        return sum(1 for n in self.nodes if n.left < 0)


def irreps_of(text: str) -> tuple[Irrep, ...]:
    """The irreps of one channel, ``"0e+1o"`` -> ``(0e, 1o)`` (multiplicities must be 1)."""
    found = Irreps(text)
    if any(mul != 1 for mul, _ in found):
        raise ValueError(f"a FuseSpec holds the irreps of one channel, got {text!r}")
    return tuple(ir for _, ir in found)


def tree_leaves(tree: Tree) -> list[int]:
    """Input positions of a tree, left to right."""
    return [tree] if isinstance(tree, int) else tree_leaves(tree[0]) + tree_leaves(tree[1])


@functools.cache
def fuse_layout(spec: FuseSpec) -> Layout:
    """The pruned nodes and the ordered, normalized paths of ``spec``.

    >>> lay = fuse_layout(FuseSpec(("1o", "1o", "1o"), "0o", ((0, 1), 2)))
    >>> [p.degrees for p in lay.paths]  # (a x b -> 1e) . c: the triple product; 0e and 2e cannot reach 0o
    [(1,)]
    """
    layout = _enumerate(spec, spec.lmax)
    if spec.lmax is None:
        return layout
    kept = {e.ir for n in layout.nodes for e in n.entries if n.left >= 0}
    full = _enumerate(spec, None)
    lost = {e.ir for n in full.nodes for e in n.entries if n.left >= 0} - kept
    return layout._replace(dropped=tuple(sorted(lost)))


def _enumerate(spec: FuseSpec, lmax: int | None) -> Layout:
    inputs = [irreps_of(s) for s in spec.inputs]
    outputs = irreps_of(spec.outputs)
    if isinstance(spec.tree, int) or sorted(tree_leaves(spec.tree)) != list(range(len(inputs))):
        raise ValueError(f"tree {spec.tree} must use each of the {len(inputs)} inputs once")
    tops = [max(ir.l for ir in irs) for irs in inputs]
    reach = max(ir.l for ir in outputs)
    # (tree, left child, right child, entries); leaves first, then internal nodes bottom-up
    raw: list[_Raw] = [(k, -1, -1, [Entry(i, -1, ir, 0) for i, ir in enumerate(irs)]) for k, irs in enumerate(inputs)]

    def build(tree: Tree) -> int:
        if isinstance(tree, int):
            return tree
        left, right = build(tree[0]), build(tree[1])
        entries: list[Entry] = []
        if tree is not spec.tree:  # the root's blocks are the paths, enumerated below
            # an irrep of degree l here can still reach the output only if l <= max output degree + what is outside
            bound = reach + sum(tops) - sum(tops[k] for k in tree_leaves(tree))
            if lmax is not None:
                bound = min(bound, lmax)
            for i, a in enumerate(raw[left][3]):
                for j, b in enumerate(raw[right][3]):
                    entries.extend(Entry(i, j, ir, 0) for ir in _product(a.ir, b.ir) if ir.l <= bound)
                if len(entries) > MAX_ENTRIES:
                    raise ValueError(f"a node of this fuse would hold over {MAX_ENTRIES} irreps")
        raw.append((tree, left, right, entries))
        return len(raw) - 1

    root = build(spec.tree)
    _, left, right, _ = raw[root]
    reached = {
        (a, b): [k for k, ir in enumerate(outputs) if ir in _product(a, b)]
        for a in _irs(raw[left][3])
        for b in _irs(raw[right][3])
    }
    found = [
        (i, j, k) for i, a in enumerate(raw[left][3]) for j, b in enumerate(raw[right][3]) for k in reached[a.ir, b.ir]
    ]
    if len(found) > MAX_PATHS:
        raise ValueError(f"this fuse would have {len(found)} paths (at most {MAX_PATHS})")
    nodes, remap = _pruned(raw, _needed(raw, found, len(inputs)))
    paths = [(remap[left][i], remap[right][j], k) for i, j, k in found]
    return _paths(nodes, len(inputs), outputs, paths, left, right)


#: one node of a tree being enumerated: its subtree, left and right child (-1 for leaves), its entries
_Raw = tuple[Tree, int, int, list[Entry]]


def _needed(raw: list[_Raw], found: list[tuple[int, int, int]], n_inputs: int) -> list[set[int]]:
    """Per node, the entries some path uses (every entry of an input): walk down from the root, parents first."""
    root = len(raw) - 1
    _, left, right, _ = raw[root]
    needed: list[set[int]] = [set(range(len(r[3]))) if n < n_inputs else set() for n, r in enumerate(raw)]
    for i, j, _ in found:
        needed[left].add(i)
        needed[right].add(j)
    for node in range(root - 1, n_inputs - 1, -1):
        for n in needed[node]:
            entry = raw[node][3][n]
            needed[raw[node][1]].add(entry.left)
            needed[raw[node][2]].add(entry.right)
    return needed


def _pruned(raw: list[_Raw], needed: list[set[int]]) -> tuple[list[Node], list[dict[int, int]]]:
    """The nodes with only their needed entries, renumbered, and per node the old entry index -> the new one."""
    nodes: list[Node] = []
    remap: list[dict[int, int]] = []
    for node, (tree, l_child, r_child, entries) in enumerate(raw):
        index: dict[int, int] = {}
        fresh: list[Entry] = []
        offset = 0
        for n in sorted(needed[node]):
            e = entries[n]
            index[n] = len(fresh)
            l_new, r_new = (e.left, -1) if l_child < 0 else (remap[l_child][e.left], remap[r_child][e.right])
            fresh.append(Entry(l_new, r_new, e.ir, offset))
            offset += e.ir.dim
        remap.append(index)
        nodes.append(Node(tree, l_child, r_child, tuple(fresh), offset))
    return nodes, remap


@functools.cache
def _product(a: Irrep, b: Irrep) -> tuple[Irrep, ...]:
    """``a x b``, cached: enumerating a tree asks for the same few products millions of times."""
    return a * b


def _irs(entries: list[Entry]) -> set[Irrep]:
    return {e.ir for e in entries}


def _paths(
    nodes: list[Node], n_inputs: int, outputs: tuple[Irrep, ...], raw: list[tuple[int, int, int]], left: int, right: int
) -> Layout:
    """Order the paths (the weight layout), normalize them and place their blocks."""

    def walk(node: int, entry: int, chosen: dict[int, int]) -> dict[int, int]:
        """The entry each node below ``node`` takes on a path through ``entry``."""
        chosen[node] = entry
        if nodes[node].left >= 0:
            e = nodes[node].entries[entry]
            walk(nodes[node].left, e.left, chosen)
            walk(nodes[node].right, e.right, chosen)
        return chosen

    found = []
    for i, j, k in raw:
        chosen = walk(right, j, walk(left, i, {}))
        leaves = tuple(nodes[q].entries[chosen[q]].left for q in range(n_inputs))
        inner = tuple(chosen[q] for q in range(n_inputs, len(nodes) - 1))
        degrees = tuple(nodes[q].entries[chosen[q]].ir.l for q in range(n_inputs, len(nodes) - 1))
        found.append((leaves, degrees, k, i, j, inner))
    found.sort()
    count = [0] * len(outputs)
    for _, _, k, *_ in found:
        count[k] += 1
    out_offsets = [sum(ir.dim for ir in outputs[:k]) for k in range(len(outputs))]
    paths = []
    offset = 0
    for leaves, degrees, k, i, j, inner in found:
        alpha = math.sqrt(outputs[k].dim * math.prod(2 * l + 1 for l in degrees) / count[k])
        paths.append(Path(i, j, k, leaves, inner, degrees, alpha, offset, out_offsets[k]))
        offset += outputs[k].dim
    root = nodes[-1]._replace(dim=offset)
    return Layout((*nodes[:-1], root), tuple(paths), outputs, sum(ir.dim for ir in outputs), ())
