"""``SymmetricPower``: run-time evaluation of ``power(a, nu) -> irreps_out``, MACE's symmetric contraction.

What it computes. ``a`` is ``[n, mul * dim(V)]`` in e3nn's ``mul_ir`` layout with one multiplicity ``mul`` for all
irreps of ``V`` (MACE's ``A`` features, ``V = 0e + 1o + 2e + 3o``). For node ``n``, channel ``c`` and each output block
``b`` (irrep ``L_b``, ``mul`` copies)::

    out[n, c, b, M] = sum_{k = 1..nu} sum_j w[b, k, j, c] * B_{b,k,j}(x[n, c])[M] / sqrt(K_b)

where ``x[n, c]`` in ``V`` is channel ``c`` of ``a[n]``, ``B_{b,k,j}`` is element ``j`` of
``symmetric_basis(V, k, L_b)`` (orthonormal equivariant polynomials of degree ``k``, ``E|B(x)|^2 = 2L+1`` for
standard normal ``x``), and ``K_b`` is the number of basis elements of block ``b`` over all degrees. So the weights are
exactly as many as the dimension of the function space (no redundancy), and unit-variance weights and inputs give
unit-variance outputs, as in e3nn. ``w`` is the weight of the node's species (``learned[z]``), of the node itself
(external weights), or shared (``learned``).

Interface for generated code (``species`` is the range of the index input of ``learned[z]``, ``None`` otherwise)::

    self.B_power = fdg.runtime.SymmetricPower("64x0e+64x1o+64x2e+64x3o", 3, "64x0e+64x1o", species=4)
    self.B_weight = torch.nn.Parameter(torch.randn(4, 1856))  # == [species, B_power.weight_numel]
    ...
    B = self.B_power(A, self.B_weight, z)  # A: [n, 1024], z: [n] int64 in 0..3 -> B: [n, 256]

Weight layout: one weight set is ``[K_total, mul]`` flattened row-major, its rows ordered by output block, then degree
``k = 1..nu``, then basis element ``j`` (``weight_rows(b, k)`` gives the rows of one block and degree). Shapes:
``[weight_numel]`` (shared), ``[species, weight_numel]`` with ``z`` (per species), ``[n, weight_numel]`` (per node).

How: the kept coupled trees are evaluated by their CG couplings (``power_program.py``), with the weights turned from
basis weights into tree weights first (``weights @ transform``: per species, not per node). The work per node and
channel does not depend on the number of species. All nodes go through at once: each step is one large kernel
over ``n * mul`` columns. Slicing the nodes to keep intermediates in cache (as the grouped lowering of ``couple`` does)
measured no faster here with one thread, and with two threads on a busy machine, where every kernel can wait for a
descheduled thread, 2.7x slower with slices of 64 nodes (``benchmarks/power.py``; docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .constants import constant
from .irreps import Irrep, Irreps, IrrepsLike
from .power_program import PowerProgram, coupling_tensor, power_program

Tensor = torch.Tensor


class SymmetricPower(torch.nn.Module):
    """``power(a, nu) -> irreps_out`` with external weights; see the module docstring for the formula and layout.

    Holds only buffers (CG tables and the basis-to-tree transform, rounded once from float64 and re-derived from
    float64 on a dtype change); the learned weights belong to the caller, so they are named and laid out like every
    other vertex's.

    >>> power = SymmetricPower("2x0e + 2x1o", 2, "2x0e", species=3)
    >>> power.weight_numel  # 2 channels x (0e at degree 1, 0e.0e and 1o.1o at degree 2)
    6
    >>> power(torch.randn(5, 8), torch.randn(3, 6), torch.tensor([0, 2, 1, 1, 0])).shape
    torch.Size([5, 2])
    """

    def __init__(self, irreps_in: IrrepsLike, nu: int, irreps_out: IrrepsLike, species: int | None = None) -> None:
        super().__init__()
        irreps_in, irreps_out = Irreps(irreps_in), Irreps(irreps_out)
        muls = {mul for mul, _ in irreps_in} | {mul for mul, _ in irreps_out}
        if len(muls) != 1 or not isinstance(nu, int) or nu < 1 or (species is not None and species < 1):
            raise ValueError(f"power needs one multiplicity, nu >= 1, species >= 1: {irreps_in}, {nu}, {irreps_out}")
        self.mul = muls.pop()
        self.species = species
        self.irreps_in, self.irreps_out = irreps_in, irreps_out
        V = irreps_in.channel()
        self.program: PowerProgram = power_program(V, nu, tuple(ir for _, ir in irreps_out))
        self.weight_numel = len(self.program.transform) * self.mul
        self._register_tables(torch.get_default_dtype(), None)

    def weight_rows(self, block: int, degree: int) -> slice:
        """Rows of ``weight.view(-1, K_total, mul)`` for one output block and degree ``1..nu``."""
        return self.program.weight_rows(block, degree)

    def _register_tables(self, dtype: torch.dtype, device: torch.device | None) -> None:
        """Buffers ``transform``, ``coupling_{i}`` and ``final_{i}``: exact float64 tables at ``dtype``."""
        p = self.program
        for name, table in _tables(p.irreps, p.nu, p.blocks).items():
            self.register_buffer(name, table.to(dtype=dtype, device=device))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> SymmetricPower:
        super()._apply(fn, recurse)
        old = self._buffers["transform"]
        if old is not None:  # re-derive from float64 rather than cast: exact at the new dtype
            self._register_tables(old.dtype, old.device)
        return self

    def forward(self, a: Tensor, weight: Tensor, z: Tensor | None = None) -> Tensor:
        """``a [n, irreps_in.dim]`` and the weights (see the module docstring) -> ``[n, irreps_out.dim]``."""
        trees = len(self.program.transform)
        # basis weights -> tree weights, once per weight set (species), before any node is touched
        v = torch.einsum("skc,kj->sjc", weight.reshape(-1, trees, self.mul), self.transform)
        if self.species is not None:
            if z is None:
                raise ValueError("this power has one weight set per species: pass the species index z")
            return self._evaluate(a, v.index_select(0, z))
        return self._evaluate(a, v)  # v: [1, trees, mul] (shared) or [n, trees, mul] (one weight set per node)

    def _evaluate(self, a: Tensor, v: Tensor) -> Tensor:
        """``a [n, irreps_in.dim]``, tree weights ``v [n or 1, trees, mul]`` -> ``[n, irreps_out.dim]``."""
        p, n, c = self.program, a.shape[0], self.mul
        dims = [ir.dim for ir in p.leaves]
        # components first, one contiguous [dim(V), n, mul]: every product below runs along n * mul columns
        blocks = a.split([c * d for d in dims], 1)
        x = torch.cat([blk.reshape(n, c, d).permute(2, 0, 1) for blk, d in zip(blocks, dims, strict=True)])
        leaves = x.split(dims)
        values: list[Tensor | None] = [*leaves, *[None] * (p.values - len(leaves))]
        w = v.unbind(1)  # per tree [n or 1, mul]; unbind, not slices: its backward is one stack
        for i, step in enumerate(p.couplings):
            r = _bilinear(getattr(self, f"coupling_{i}"), values[step.parent], leaves[step.copy], step.order)
            for child, part in zip(step.children, r.split([ir.dim for ir in step.irreps]), strict=True):
                values[child] = part
        outs: list[Tensor | None] = [None] * len(p.blocks)
        for i, final in enumerate(p.finals):
            parts = [_weighted_sum(values, w, terms) for terms in final.terms]
            u = parts[0] if len(parts) == 1 else torch.cat(parts)
            r = _bilinear(getattr(self, f"final_{i}"), u, leaves[final.copy], final.order)
            previous = outs[final.block]
            outs[final.block] = r if previous is None else previous + r
        for direct in p.directs:
            previous = outs[direct.block]
            term = leaves[direct.copy] * w[direct.tree]
            outs[direct.block] = term if previous is None else previous + term
        results = [out.permute(1, 2, 0).reshape(n, c * out.shape[0]) for out in outs if out is not None]
        return results[0] if len(results) == 1 else torch.cat(results, 1)


def _weighted_sum(values: list[Tensor | None], w: tuple[Tensor, ...], terms: tuple[tuple[int, int], ...]) -> Tensor:
    """``sum_t w[tree_t] * values[node_t]``: the trees that end in one coupling meet their weights before it."""
    total: Tensor | None = None
    for node, tree in terms:
        value = values[node]
        assert value is not None  # the program computes parents first
        total = value * w[tree] if total is None else torch.addcmul(total, value, w[tree])
    assert total is not None
    return total


def _bilinear(table: Tensor, u: Tensor | None, x: Tensor, order: str) -> Tensor:
    """``r[R, n, c] = sum_{p, a} F[R, p, a] u[p, n, c] x[a, n, c]``, ``table`` holding ``F`` shaped for ``order``.

    ``"outer"`` (``table`` ``[R, P * A]``): the outer product of ``u`` and ``x``, one matrix product. ``"x"``
    (``[R * P, A]``): ``F @ x``, then the product with ``u`` summed over ``p``. ``"u"`` (``[R * A, P]``): ``F @ u``,
    then the product with ``x`` summed over ``a``.
    """
    assert u is not None  # the program computes parents first
    P, A, n, c = u.shape[0], x.shape[0], x.shape[1], x.shape[2]
    if order == "outer":
        return (table @ (u[:, None] * x[None]).reshape(P * A, n * c)).reshape(table.shape[0], n, c)
    first, other = (x, u) if order == "x" else (u, x)  # the operand F meets first, and the one summed after
    K, R = other.shape[0], table.shape[0] // other.shape[0]
    coupled = (table @ first.reshape(first.shape[0], n * c)).reshape(R, K, n * c)
    return (coupled * other.reshape(K, n * c)).sum(1).reshape(R, n, c)


@constant
def _tables(irreps: Irreps, nu: int, blocks: tuple[Irrep, ...]) -> dict[str, Tensor]:
    """The buffers of a program in float64 (cached; copied to the module's dtype and device when registered)."""
    program = power_program(irreps, nu, blocks)
    tables = {"transform": program.transform}
    for i, step in enumerate(program.couplings):
        F = coupling_tensor((step.parent_irrep,), program.leaves[step.copy], step.irreps)
        tables[f"coupling_{i}"] = _shape(F, step.order)
    for i, final in enumerate(program.finals):
        F = coupling_tensor(final.irreps, program.leaves[final.copy], (program.blocks[final.block],))
        tables[f"final_{i}"] = _shape(F, final.order)
    return tables


def _shape(F: Tensor, order: str) -> Tensor:
    """``F [R, P, A]`` as the matrix its order multiplies: ``[R, P * A]``, ``[R * P, A]`` or ``[R * A, P]``."""
    if order == "outer":
        return F.reshape(F.shape[0], -1).contiguous()
    if order == "x":
        return F.reshape(-1, F.shape[2]).contiguous()
    return F.transpose(1, 2).reshape(-1, F.shape[1]).contiguous()
