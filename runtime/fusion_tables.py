"""The coupling paths of the n-ary fusion vertex ``fuse`` along a tree, and the exact tables that evaluate them.

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

Tables are built in float64 from the exact 3j tables (``wigner.wigner_3j_exact``, rounded once); a folded chain of
several of them sums at most a few products per entry, so its entries are within a few ulps of the exact values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple, TypeAlias

import torch

from .irreps import Irrep, Irreps
from .wigner import wigner_3j

Tensor = torch.Tensor
Tree: TypeAlias = int | tuple["Tree", "Tree"]

#: most entries one node of a tree may hold (a guard against trees whose intermediates explode)
MAX_ENTRIES = 200_000


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
    raw: list[tuple[Tree, int, int, list[Entry]]] = [
        (k, -1, -1, [Entry(i, -1, ir, 0) for i, ir in enumerate(irs)]) for k, irs in enumerate(inputs)
    ]

    def build(tree: Tree) -> int:
        if isinstance(tree, int):
            return tree
        left, right = build(tree[0]), build(tree[1])
        entries = []
        if tree is not spec.tree:  # the root's blocks are the paths, enumerated below
            # an irrep of degree l here can still reach the output only if l <= max output degree + what is outside
            bound = reach + sum(tops) - sum(tops[k] for k in tree_leaves(tree))
            if lmax is not None:
                bound = min(bound, lmax)
            entries = [
                Entry(i, j, ir, 0)
                for i, a in enumerate(raw[left][3])
                for j, b in enumerate(raw[right][3])
                for ir in a.ir * b.ir
                if ir.l <= bound
            ]
            if len(entries) > MAX_ENTRIES:
                raise ValueError(f"the node {tree} of this fuse would hold {len(entries)} irreps")
        raw.append((tree, left, right, entries))
        return len(raw) - 1

    root = build(spec.tree)
    _, left, right, _ = raw[root]
    found = [
        (i, j, k)
        for i, a in enumerate(raw[left][3])
        for j, b in enumerate(raw[right][3])
        for k, ir in enumerate(outputs)
        if ir in a.ir * b.ir
    ]
    # keep only the entries some path uses: walk down from the root, parents before children
    needed: list[set[int]] = [set(range(len(r[3]))) if n < len(inputs) else set() for n, r in enumerate(raw)]
    for i, j, _ in found:
        needed[left].add(i)
        needed[right].add(j)
    for node in range(root - 1, len(inputs) - 1, -1):
        for n in needed[node]:
            entry = raw[node][3][n]
            needed[raw[node][1]].add(entry.left)
            needed[raw[node][2]].add(entry.right)
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
    paths = [(remap[left][i], remap[right][j], k) for i, j, k in found]
    return _paths(nodes, len(inputs), outputs, paths, left, right)


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


# ---------------------------------------------------------------- sparse tables (float64, exact 3j entries)


class Sparse(NamedTuple):
    """A table as its non-zeros: ``pos[k]`` the component of operand ``k``, ``pos[-1]`` the column."""

    pos: Tensor  # int64 [operands + 1, nnz]
    values: Tensor  # float64 [nnz]
    shape: tuple[int, ...]  # operand dims, then columns

    def dense(self) -> Tensor:
        """``[prod(operand dims), columns]``, rows in row-major order of the operands' components."""
        rows = torch.zeros(self.pos.shape[1], dtype=torch.int64)
        for k, d in enumerate(self.shape[:-1]):
            rows = rows * d + self.pos[k]
        table = torch.zeros(math.prod(self.shape[:-1]), self.shape[-1], dtype=torch.float64)
        table.index_put_((rows, self.pos[-1]), self.values, accumulate=True)
        return table


def _block(cg: Tensor, offsets: tuple[int, ...], scale: float) -> tuple[Tensor, Tensor]:
    nz = cg.nonzero()
    return nz.T + torch.tensor(offsets).unsqueeze(1), cg[tuple(nz.T)] * scale


def _collect(blocks: list[tuple[Tensor, Tensor]], shape: tuple[int, ...]) -> Sparse:
    """Concatenate blocks of entries, sorted by (column, operand components): deterministic and column-major."""
    if not blocks:
        return Sparse(torch.zeros(len(shape), 0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64), shape)
    index = torch.cat([b[0] for b in blocks], dim=1)
    values = torch.cat([b[1] for b in blocks])
    key = index[-1].clone()
    for k, d in enumerate(shape[:-1]):
        key = key * d + index[k]
    order = torch.argsort(key)
    return Sparse(index[:, order], values[order], shape)


@functools.cache
def node_table(spec: FuseSpec, node: int, summed: bool = False) -> Sparse:
    """The coupling of an internal node's two children: ``[left, right, node]`` (the root: a block per path, scaled
    by alpha; ``summed``: the paths added into the output channel, for a fuse without weights)."""
    lay = fuse_layout(spec)
    n = lay.nodes[node]
    left, right = lay.nodes[n.left], lay.nodes[n.right]
    blocks = []
    if node < len(lay.nodes) - 1:
        for e in n.entries:
            a, b = left.entries[e.left], right.entries[e.right]
            blocks.append(_block(wigner_3j(a.ir.l, b.ir.l, e.ir.l, torch.float64), (a.offset, b.offset, e.offset), 1))
        return _collect(blocks, (left.dim, right.dim, n.dim))
    for p in lay.paths:
        a, b, ir = left.entries[p.left], right.entries[p.right], lay.outputs[p.i_out]
        column = p.out if summed else p.offset
        blocks.append(_block(wigner_3j(a.ir.l, b.ir.l, ir.l, torch.float64), (a.offset, b.offset, column), p.alpha))
    table = _collect(blocks, (left.dim, right.dim, lay.out_dim if summed else lay.root_dim))
    return _merge(table) if summed else table


def _merge(table: Sparse) -> Sparse:
    """Add up entries at the same position (paths summed into one column)."""
    positions, inverse = torch.unique(table.pos, dim=1, return_inverse=True)
    values = torch.zeros(positions.shape[1], dtype=torch.float64).index_add(0, inverse, table.values)
    return _collect([(positions, values)], table.shape)


@functools.cache
def _chain(tree: Tree, leaf_irreps: tuple[Irrep, ...], degrees: tuple[int, ...], l_out: int) -> Tensor:
    """The chain of 3j tensors of one path, ``[d_0, ..., d_{n-1}, 2 l_out + 1]`` with inputs in input order."""
    pending = list(degrees)

    def value(t: Tree) -> tuple[Tensor, list[int], int]:
        if isinstance(t, int):
            d = leaf_irreps[t].dim
            return torch.eye(d, dtype=torch.float64), [t], leaf_irreps[t].l
        (tl, kl, ll), (tr, kr, lr) = value(t[0]), value(t[1])
        l = pending.pop(0) if pending else l_out
        cg = wigner_3j(ll, lr, l, torch.float64)
        return torch.einsum("xa,yb,abc->xyc", tl, tr, cg).reshape(-1, 2 * l + 1), kl + kr, l

    table, order, _ = value(tree)
    dims = [leaf_irreps[k].dim for k in order]
    by_input = table.reshape(*dims, -1).permute(*[order.index(k) for k in range(len(order))], len(order))
    return by_input.contiguous()


def path_tensor(spec: FuseSpec, path: Path) -> Tensor:
    """``alpha`` times the chain of ``path``: ``[d_0, ..., d_{n-1}, 2L+1]`` over the chosen irrep of each input."""
    lay = fuse_layout(spec)
    irs = tuple(lay.nodes[k].entries[i].ir for k, i in enumerate(path.leaves))
    # internal nodes are numbered bottom-up in the order value() visits them, so degrees line up
    return _chain(spec.tree, irs, path.degrees, lay.outputs[path.i_out].l) * path.alpha


@functools.cache
def folded_table(spec: FuseSpec, summed: bool = False) -> Sparse:
    """The whole tree pre-contracted: ``[d_0, ..., d_{n-1}, root]``, one generalized CG tensor per path."""
    lay = fuse_layout(spec)
    leaves = lay.nodes[: len(spec.inputs)]
    blocks = []
    for p in lay.paths:
        offsets = tuple(leaves[k].entries[i].offset for k, i in enumerate(p.leaves))
        blocks.append(_block(path_tensor(spec, p), (*offsets, p.out if summed else p.offset), 1))
    shape = (*(n.dim for n in leaves), lay.out_dim if summed else lay.root_dim)
    table = _collect(blocks, shape)
    return _merge(table) if summed else table


def columns(spec: FuseSpec) -> Tensor:
    """For each column of the root's value: its path and its column in one output channel, ``int64 [2, root]``."""
    lay = fuse_layout(spec)
    found = [(n, p.out + m) for n, p in enumerate(lay.paths) for m in range(lay.outputs[p.i_out].dim)]
    return torch.tensor(found, dtype=torch.int64).reshape(-1, 2).T.contiguous()


def _rows(table: Sparse) -> Tensor:
    """The flat row of each entry: operand components in row-major order."""
    rows = torch.zeros_like(table.pos[-1])
    for k, d in enumerate(table.shape[:-1]):
        rows = rows * d + table.pos[k]
    return rows


def dense_weights(spec: FuseSpec, table: Sparse) -> Sparse:
    """How shared weights ``w [paths, mul]`` fold into a dense per-channel table ``W [mul, rows * out]``.

    ``table`` has a block of columns per path (the root's, or the folded tensor's); its entry ``v`` at row ``x`` and
    column ``(p, m)`` adds ``w[p, u] * v`` to ``W[u, x, m']``, ``m'`` the column of that component in one output
    channel.  Returns those additions as entries ``[2, E]``: (path, flat position in ``[rows, out]``).
    """
    cols = columns(spec)
    path, out = cols[0][table.pos[-1]], cols[1][table.pos[-1]]
    lay = fuse_layout(spec)
    flat = _rows(table) * lay.out_dim + out
    return Sparse(torch.stack([path, flat]), table.values, (len(lay.paths), math.prod(table.shape[:-1]) * lay.out_dim))


def sparse_weights(spec: FuseSpec, table: Sparse) -> tuple[Tensor, Sparse]:
    """The same for a sparse per-channel table: the positions of its non-zeros as a product index
    ``[operands + 1, U]`` (components, output column), and the entries ``[2, E]``: (path, position)."""
    cols = columns(spec)
    path, out = cols[0][table.pos[-1]], cols[1][table.pos[-1]]
    rows = math.prod(table.shape[:-1])
    unique, position = torch.unique(out * rows + _rows(table), return_inverse=True)  # column-major, like the tables
    parts = [unique // rows]
    flat = unique % rows
    for d in reversed(table.shape[:-1]):
        parts.append(flat % d)
        flat = flat // d
    product = torch.stack(parts[:0:-1] + parts[:1])
    entries = Sparse(torch.stack([path, position]), table.values, (len(fuse_layout(spec).paths), unique.numel()))
    return product, entries


@functools.cache
def recoupling(source: FuseSpec, target: Tree) -> Sparse:
    """``R`` with path ``q`` of ``source`` = ``sum_p R[q, p]`` path ``p`` of the same vertex along ``target``.

    Both sets of paths span the same equivariant maps when no irrep is dropped (6j / 9j recoupling), and paths of one
    tree with the same inputs' irreps and output irrep are orthogonal, so ``R[q, p] = <q, p> / <p, p>``: weights
    ``w`` of ``source`` become ``w @ R`` along ``target``.
    """
    other = source._replace(tree=target)
    lay_from, lay_to = fuse_layout(source), fuse_layout(other)
    if len(lay_from.paths) != len(lay_to.paths):
        raise ValueError(f"trees {source.tree} and {target} do not span the same paths")
    groups: dict[tuple[tuple[int, ...], int], list[int]] = {}
    for n, p in enumerate(lay_to.paths):
        groups.setdefault((p.leaves, p.i_out), []).append(n)
    rows, cols, values = [], [], []
    for q, path in enumerate(lay_from.paths):
        tq = path_tensor(source, path)
        for n in groups[(path.leaves, path.i_out)]:
            tp = path_tensor(other, lay_to.paths[n])
            overlap = float((tq * tp).sum() / (tp * tp).sum())
            if abs(overlap) > 1e-12:
                rows.append(q)
                cols.append(n)
                values.append(overlap)
    index = torch.tensor([rows, cols], dtype=torch.int64).reshape(2, -1)
    return Sparse(index, torch.tensor(values, dtype=torch.float64), (len(lay_from.paths), len(lay_to.paths)))


# ---------------------------------------------------------------- tables by name, for generated modules


def _product(spec: FuseSpec, part: str, summed: bool) -> Sparse:
    if part == "folded":
        return folded_table(spec, summed)
    if part == "root":
        return node_table(spec, len(fuse_layout(spec).nodes) - 1, summed)
    if part.startswith("node") and part[4:].isdigit():
        return node_table(spec, int(part[4:]))
    raise ValueError(f"unknown part {part!r} of a fuse table")


@functools.cache
def _table64(spec: FuseSpec, what: str, target: Tree | None) -> tuple[Tensor | None, Tensor | None]:
    part, *flags = what.split()
    if part == "columns":
        return None, columns(spec)
    if part == "recouple":
        assert target is not None, "recouple needs the target tree"
        r = recoupling(spec, target)
        return r.values, r.pos
    table = _product(spec, part, "sum" in flags)
    if "weights" in flags:
        entries = sparse_weights(spec, table)[1] if "sparse" in flags else dense_weights(spec, table)
        return entries.values, entries.pos
    if "union" in flags:
        return None, sparse_weights(spec, table)[0]
    if "sparse" in flags:
        return table.values, table.pos
    return table.dense(), None


def fusion_table(
    spec: FuseSpec,
    what: str,
    target: Tree | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """A table of a fuse vertex by name: ``(values, index)``, either may be ``None``.

    ``what`` is a part, ``node{J}`` (internal node ``J`` of the layout), ``root`` or ``folded`` (the whole tree
    pre-contracted), then flags: ``sum`` (paths added, for a fuse without weights), ``sparse`` (the non-zeros and their
    index ``[operands + 1, nnz]``, else the dense ``[rows, columns]``), ``weights`` (how shared weights fold in: see
    :func:`dense_weights`, :func:`sparse_weights`), ``union`` (the index of the folded weights' non-zeros).  Two more:
    ``columns`` (path and output column of each column of the root) and ``recouple`` (weights along ``target``).

    >>> spec = FuseSpec(("1o", "1o"), "0e", (0, 1))
    >>> values, index = fusion_table(spec, "root", dtype=torch.float64)
    >>> values.shape, index  # [3 x 3 rows, 1 path]: the dot product, times alpha = sqrt(1 / 1)
    (torch.Size([9, 1]), None)
    """
    values, index = _table64(spec, what, target)
    if values is not None:
        values = values.to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)
    if index is not None:
        index = index.to(device=device, copy=True)
    return values, index


def fusion_values(
    spec: FuseSpec,
    what: str,
    target: Tree | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``values`` of :func:`fusion_table` (a buffer re-derived exactly when a module changes dtype)."""
    values, _ = fusion_table(spec, what, target, dtype, device)
    assert values is not None, f"fuse table {what!r} has no values"
    return values
