"""The exact tables that evaluate a ``fuse`` vertex along a tree (its paths: ``fusion_paths.py``).

Every table is built in float64 from the exact 3j tables (``wigner.wigner_3j_exact``, rounded once) and kept as its
non-zeros (:class:`Sparse`): the coupling of each internal node, the whole tree pre-contracted (*folded*, one
generalized CG tensor per path), how learned weights fold into a per-channel table, and the recoupling of one
tree's paths into another's.  A folded chain sums at most a few products per entry, so its entries are within a
few ulps of the exact values.  Generated modules ask for each by a typed :class:`FuseTable` (:func:`fusion_table`)
and re-derive them on a dtype change.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from .constants import constant
from .fusion_kernel import kernel_matrix
from .fusion_paths import FuseSpec, Path, Tree, fuse_layout
from .irreps import Irrep
from .threads import single_threaded
from .wigner import wigner_3j

Tensor = torch.Tensor


# ---------------------------------------------------------------- sparse tables (float64, exact 3j entries)


class Sparse(NamedTuple):
    """A table as its non-zeros: ``pos[k]`` the component of operand ``k``, ``pos[-1]`` the column."""

    pos: Tensor  # int64 [operands + 1, nnz]
    values: Tensor  # float64 [nnz]
    shape: tuple[int, ...]  # operand dims, then columns

    def reordered(self, order: tuple[int, ...]) -> Sparse:
        """The same table with its operands taken in ``order`` (a permutation of their positions)."""
        pos = self.pos[[*order, len(order)]]
        shape = (*(self.shape[k] for k in order), self.shape[-1])
        return _collect([(pos, self.values)], shape)

    def dense(self) -> Tensor:
        """``[prod(operand dims), columns]``, rows in row-major order of the operands' components."""
        rows = torch.zeros(self.pos.shape[1], dtype=torch.int64)
        for k, d in enumerate(self.shape[:-1]):
            rows = rows * d + self.pos[k]
        table = torch.zeros(math.prod(self.shape[:-1]), self.shape[-1], dtype=torch.float64)
        table.index_put_((rows, self.pos[-1]), self.values, accumulate=True)
        return table


@constant
def _cg(l1: int, l2: int, l3: int) -> Tensor:
    """``wigner_3j`` in float64, shared (callers never modify it): tables ask for the same few thousands of times."""
    return wigner_3j(l1, l2, l3, torch.float64)


@constant
def _cg_entries(l1: int, l2: int, l3: int) -> tuple[Tensor, Tensor]:
    """The non-zeros of :func:`_cg`: positions ``[3, nnz]`` and values."""
    cg = _cg(l1, l2, l3)
    nz = cg.nonzero().T
    return nz, cg[tuple(nz)]


def _block(ls: tuple[int, int, int], offsets: tuple[int, ...], scale: float) -> tuple[Tensor, Tensor]:
    """The entries of one 3j tensor placed at ``offsets`` and scaled."""
    nz, values = _cg_entries(*ls)
    return nz + torch.tensor(offsets).unsqueeze(1), values * scale


def _place(table: Tensor, offsets: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """The non-zeros of a dense table placed at ``offsets``."""
    nz = table.nonzero().T
    return nz + torch.tensor(offsets).unsqueeze(1), table[tuple(nz)]


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


@constant
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
            blocks.append(_block((a.ir.l, b.ir.l, e.ir.l), (a.offset, b.offset, e.offset), 1))
        return _collect(blocks, (left.dim, right.dim, n.dim))
    for p in lay.paths:
        a, b, ir = left.entries[p.left], right.entries[p.right], lay.outputs[p.i_out]
        column = p.out if summed else p.offset
        blocks.append(_block((a.ir.l, b.ir.l, ir.l), (a.offset, b.offset, column), p.alpha))
    table = _collect(blocks, (left.dim, right.dim, lay.out_dim if summed else lay.root_dim))
    return _merge(table) if summed else table


def _merge(table: Sparse) -> Sparse:
    """Add up entries at the same position (paths summed into one column)."""
    positions, inverse = torch.unique(table.pos, dim=1, return_inverse=True)
    values = torch.zeros(positions.shape[1], dtype=torch.float64).index_add(0, inverse, table.values)
    return _collect([(positions, values)], table.shape)


@constant
def _chain(tree: Tree, leaf_irreps: tuple[Irrep, ...], degrees: tuple[int, ...], l_out: int) -> Tensor:
    """The chain of 3j tensors of one path, ``[d_0, ..., d_{n-1}, 2 l_out + 1]`` with inputs in input order."""
    pending = list(degrees)

    def value(t: Tree) -> tuple[Tensor, list[int], int]:
        if isinstance(t, int):
            d = leaf_irreps[t].dim
            return torch.eye(d, dtype=torch.float64), [t], leaf_irreps[t].l
        (tl, kl, ll), (tr, kr, lr) = value(t[0]), value(t[1])
        l = pending.pop(0) if pending else l_out
        cg = _cg(ll, lr, l)
        # two matmuls rather than a three-operand einsum (which would search a contraction order on every call)
        left = (tl @ cg.reshape(cg.shape[0], -1)).reshape(tl.shape[0], cg.shape[1], cg.shape[2])
        return torch.matmul(tr, left).reshape(-1, 2 * l + 1), kl + kr, l

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


@constant
def folded_table(spec: FuseSpec, summed: bool = False) -> Sparse:
    """The whole tree pre-contracted: ``[d_0, ..., d_{n-1}, root]``, one generalized CG tensor per path."""
    lay = fuse_layout(spec)
    leaves = lay.nodes[: len(spec.inputs)]
    blocks = []
    for p in lay.paths:
        offsets = tuple(leaves[k].entries[i].offset for k, i in enumerate(p.leaves))
        blocks.append(_place(path_tensor(spec, p), (*offsets, p.out if summed else p.offset)))
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


@constant
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
    groups: dict[tuple[tuple[int, ...], int], tuple[list[int], list[int]]] = {}
    for q, p in enumerate(lay_from.paths):
        groups.setdefault((p.leaves, p.i_out), ([], []))[0].append(q)
    for n, p in enumerate(lay_to.paths):
        groups[(p.leaves, p.i_out)][1].append(n)
    rows, cols, values = [], [], []
    for sources, targets in groups.values():  # one block of R per choice of the inputs' irreps and output irrep
        a = torch.stack([path_tensor(source, lay_from.paths[q]).reshape(-1) for q in sources])
        b = torch.stack([path_tensor(other, lay_to.paths[n]).reshape(-1) for n in targets])
        block = (a @ b.T) / (b * b).sum(dim=1)
        for (i, j), overlap in zip(block.nonzero().tolist(), block[block != 0].tolist(), strict=True):
            if abs(overlap) > 1e-12:  # a vanishing 6j symbol, up to rounding
                rows.append(sources[i])
                cols.append(targets[j])
                values.append(overlap)
    index = torch.tensor([rows, cols], dtype=torch.int64).reshape(2, -1)
    return Sparse(index, torch.tensor(values, dtype=torch.float64), (len(lay_from.paths), len(lay_to.paths)))


# ---------------------------------------------------------------- the tables generated modules register


class FuseTable(NamedTuple):
    """Which table of a fuse vertex a module registers (:func:`fusion_table`).

    ``part`` is ``"node"`` (the coupling of internal node ``node`` of the layout), ``"root"`` (the last internal
    node), ``"folded"`` (the whole tree pre-contracted, one tensor per path), ``"columns"`` (the path and output column
    of each column of the root), ``"recouple"`` (the weights' recoupling from the spec's tree to ``target``) or
    ``"kernel"`` (the root as the native kernel's coupling matrix, :mod:`fdg.runtime.fusion_kernel`).  The
    flags say how a product's table is laid out: ``summed`` (paths added, for a fuse without weights), ``order`` (its
    operands in that order), ``sparse`` (the non-zeros and their index ``[operands + 1, nnz]``, else the dense
    ``[rows, columns]``), ``weights`` (how shared weights fold in: :func:`dense_weights`, :func:`sparse_weights`) and
    ``union`` (only the index of the folded weights' non-zeros).
    """

    part: Literal["node", "root", "folded", "columns", "recouple", "kernel"]
    node: int = -1
    summed: bool = False
    order: tuple[int, ...] = ()
    sparse: bool = False
    weights: bool = False
    union: bool = False
    target: Tree | None = None

    @property
    def label(self) -> str:
        """The part as a name: ``node3``, ``root``, ``folded``..."""
        return f"node{self.node}" if self.part == "node" else self.part


def _product(spec: FuseSpec, table: FuseTable) -> Sparse:
    if table.part == "folded":
        return folded_table(spec, table.summed)
    if table.part == "root":
        return node_table(spec, len(fuse_layout(spec).nodes) - 1, table.summed)
    if table.part == "node":
        return node_table(spec, table.node)
    raise ValueError(f"{table.part!r} is not a product of a fuse")


@constant
def _table64(spec: FuseSpec, table: FuseTable) -> tuple[Tensor | None, Tensor | None]:
    if table.part == "columns":
        return None, columns(spec)
    if table.part == "kernel":
        return kernel_matrix(spec, _product(spec, FuseTable("root"))), None
    if table.part == "recouple":
        assert table.target is not None, "recouple needs the target tree"
        r = recoupling(spec, table.target)
        return r.values, r.pos
    product = _product(spec, table)
    if table.order:
        product = product.reordered(table.order)
    if table.weights:
        entries = sparse_weights(spec, product)[1] if table.sparse else dense_weights(spec, product)
        return entries.values, entries.pos
    if table.union:
        return None, sparse_weights(spec, product)[0]
    if table.sparse:
        return product.values, product.pos
    return product.dense(), None


def fusion_table(
    spec: FuseSpec,
    table: FuseTable,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """A table of a fuse vertex: ``(values, index)``, either may be ``None``.

    >>> spec = FuseSpec(("1o", "1o"), "0e", (0, 1))
    >>> values, index = fusion_table(spec, FuseTable("root"), dtype=torch.float64)
    >>> values.shape, index  # [3 x 3 rows, 1 path]: the dot product, times alpha = sqrt(1 / 1)
    (torch.Size([9, 1]), None)
    """
    with single_threaded():
        values, index = _table64(spec, table)
    if values is not None:
        values = values.to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)
    if index is not None:
        index = index.to(device=device, copy=True)
    return values, index


def fusion_values(
    spec: FuseSpec,
    table: FuseTable,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``values`` of :func:`fusion_table` (a buffer re-derived exactly when a module changes dtype)."""
    values, _ = fusion_table(spec, table, dtype, device)
    assert values is not None, f"fuse table {table} has no values"
    return values
