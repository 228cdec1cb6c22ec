"""``SymmetricPower``: run-time evaluation of ``power(a, nu) -> irreps_out``, MACE's symmetric contraction.

What it computes. ``a`` is ``[n, mul * dim(V)]`` in e3nn's ``mul_ir`` layout with one multiplicity ``mul`` for all
irreps of ``V`` (MACE's ``A`` features, ``V = 0e + 1o + 2e + 3o``). For node ``n``, channel ``c`` and each output block
``b`` (irrep ``L_b``, ``mul`` copies)::

    out[n, c, b, M] = sum_{k = 1..nu} sum_j w[z_n, b, k, j, c] * B_{b,k,j}(x[n, c])[M] / sqrt(K_b)

where ``x[n, c]`` in ``V`` is channel ``c`` of ``a[n]``, ``B_{b,k,j}`` is element ``j`` of
``symmetric_basis(V, k, L_b)`` (orthonormal equivariant polynomials of degree ``k``, ``E|B(x)|^2 = 2L+1`` for
standard normal ``x``), and ``K_b`` is the number of basis elements of block ``b`` over all degrees. So the weights are
exactly as many as the dimension of the function space (no redundancy), and unit-variance weights and inputs give
unit-variance outputs, as in e3nn.

Interface for generated code (``species`` is the range of the index input of ``learned[z]``, ``None`` for ``learned``)::

    self.B_power = fdg.runtime.SymmetricPower("64x0e+64x1o+64x2e+64x3o", 3, "64x0e+64x1o", species=4)
    self.B_weight = torch.nn.Parameter(torch.randn(4, 1856))  # == [species, B_power.weight_numel]
    ...
    B = self.B_power(A, self.B_weight, z)  # A: [n, 1024], z: [n] int64 in 0..3 -> B: [n, 256]

Weight layout: ``weight[s]`` is ``[K_total, mul]`` flattened row-major, its rows ordered by output block, then
degree ``k = 1..nu``, then basis element ``j``; ``weight_slices`` gives the rows of each ``(block, degree)``. Without
species the weight is the flat ``[weight_numel]`` vector.

How (measured choices, see ``benchmarks/power_runtime.py``). The monomials of ``x`` of degree ``1 .. nu-1`` are built
in colex order; the top degree is contracted without building it (``colex.colex_contract``). The weights meet the basis
before the monomials, in one of two ways, chosen from the static shapes by multiply-add count:

* ``folded``: per channel and species, the basis and the weights are combined into ``W[c, (s, M), monomial]`` and one
  batched product per degree gives the outputs of every species; each node then keeps its own species. Cost per
  ``(node, channel)``: ``species * sum(2L+1)`` rows. Best for few species (MACE's usual 1-10 elements).
* ``basis``: the basis rows ``[sum_b K_b (2L+1), monomial]`` are shared by all channels, so the product is one large
  matrix product over ``n * mul`` columns; the per-node weights are applied after. Best for many species.

Measured on MACE's case (64x(0e+1o+2e+3o) -> 64x(0e+1o), nu 3, 4 species, 2000 nodes, forward+backward, 2 shared CPU
threads, interleaved medians): ``folded`` 0.84 s, ``basis`` 1.15 s, MACE's ``SymmetricContraction`` 1.97 s. Building
the top-degree monomials and multiplying them (instead of ``colex_contract``) measured 2.3x slower, and autograd
through plain slices of the monomials 1.7x slower (single thread, CPU time, prototypes), hence the custom functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from .colex import colex_contract, colex_product
from .irreps import Irrep, Irreps, IrrepsLike
from .monomials import monomial_count
from .symmetric_basis import symmetric_basis

Tensor = torch.Tensor


class PowerTables(NamedTuple):
    """Everything about ``power(V, nu) -> blocks`` that does not depend on the channel count or the dtype."""

    irreps: Irreps  # V: the irreps of one channel
    nu: int
    blocks: tuple[Irrep, ...]  # output irreps, one block each
    counts: tuple[tuple[int, ...], ...]  # counts[b][k - 1]: basis elements of block b at degree k
    bases: tuple[Tensor, ...]  # per degree k: [sum_b counts[b][k-1], sum_b dim_b, count(d, k)] float64, normalized

    @property
    def block_dims(self) -> tuple[int, ...]:
        return tuple(ir.dim for ir in self.blocks)

    def rows(self, block: int, degree: int) -> slice:
        """Rows of ``bases[degree - 1]`` (the elements ``j``) that belong to ``block``."""
        start = sum(c[degree - 1] for c in self.counts[:block])
        return slice(start, start + self.counts[block][degree - 1])


@functools.cache
def power_tables(irreps: Irreps, nu: int, blocks: tuple[Irrep, ...]) -> PowerTables:
    """The normalized bases of every degree for every output block, stacked per degree (cached; float64, CPU)."""
    counts = tuple(tuple(len(symmetric_basis(irreps, k, ir).coefficients) for k in range(1, nu + 1)) for ir in blocks)
    for ir, count in zip(blocks, counts, strict=True):
        if not sum(count):
            raise ValueError(f"no symmetric product of {irreps} of order 1..{nu} contains {ir}")
    m_total = sum(ir.dim for ir in blocks)
    bases = []
    for k in range(1, nu + 1):
        table = torch.zeros(sum(c[k - 1] for c in counts), m_total, monomial_count(irreps.dim, k), dtype=torch.float64)
        row, m0 = 0, 0
        for ir, count in zip(blocks, counts, strict=True):
            coefficients = symmetric_basis(irreps, k, ir).coefficients
            table[row : row + len(coefficients), m0 : m0 + ir.dim] = coefficients / math.sqrt(sum(count))
            row, m0 = row + len(coefficients), m0 + ir.dim
        bases.append(table)
    return PowerTables(irreps, nu, blocks, counts, tuple(bases))


class SymmetricPower(torch.nn.Module):
    """``power(a, nu) -> irreps_out`` with external weights; see the module docstring for the formula and layout.

    Holds only buffers (the bases, rounded once from float64 and re-derived from float64 on a dtype change); the
    learned weights belong to the caller, so they are named and laid out like every other vertex's.

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
        self.tables = power_tables(Irreps([(1, ir) for _, ir in irreps_in]), nu, tuple(ir for _, ir in irreps_out))
        counts, dims = self.tables.counts, self.tables.block_dims
        self.weight_numel = sum(map(sum, counts)) * self.mul
        #: ``(block, degree) -> rows`` of ``weight.view(-1, K_total, mul)``
        self.weight_slices: dict[tuple[int, int], slice] = {}
        for b, count in enumerate(counts):
            for k, size in enumerate(count, start=1):
                start = sum(map(sum, counts[:b])) + sum(count[: k - 1])
                self.weight_slices[b, k] = slice(start, start + size)
        #: the degrees with at least one basis element; the largest one is contracted without building its monomials
        self.degrees = [k for k in range(1, nu + 1) if any(count[k - 1] for count in counts)]
        self.offsets = [sum(dims[:b]) for b in range(len(dims))]  # first component of each block in sum_b dim_b
        self.folded = self._folded_is_cheaper()
        self._register_tables(torch.get_default_dtype(), None)

    def _folded_is_cheaper(self) -> bool:
        """Whether ``folded`` needs fewer multiply-adds than ``basis`` (see the module docstring).

        Per (node, channel) and top-degree monomial, ``folded`` computes ``species * sum(2L+1)`` rows and ``basis``
        ``sum_b K_b,nu (2L+1)``; ``folded`` runs three such products (forward, input gradient, weight gradient) and
        ``basis`` two (its rows are constants).
        """
        top = self.degrees[-1] - 1
        folded_rows = (self.species or 1) * sum(self.tables.block_dims)
        basis_rows = sum(c[top] * dim for c, dim in zip(self.tables.counts, self.tables.block_dims, strict=True))
        return 3 * folded_rows <= 2 * basis_rows

    def set_strategy(self, folded: bool) -> None:
        """Force the ``folded`` (True) or ``basis`` (False) evaluation; both compute the same function."""
        buffer = getattr(self, f"basis_{self.degrees[0]}")
        self.folded = folded
        self._register_tables(buffer.dtype, buffer.device)

    def _register_tables(self, dtype: torch.dtype, device: torch.device | None) -> None:
        """Buffers ``basis_{k}`` and ``weight_rows_{k}`` of each degree ``k`` in ``degrees``, for the strategy."""
        for k in self.degrees:
            basis = self.tables.bases[k - 1]  # [K_k, sum_b dim_b, count]
            # weight rows of degree k, in the order of the basis elements (block by block)
            slices = [self.weight_slices[b, k] for b in range(len(self.tables.blocks))]
            rows = [r for rows in slices for r in range(rows.start, rows.stop)]
            self.register_buffer(f"weight_rows_{k}", torch.tensor(rows, dtype=torch.int64, device=device))
            if not self.folded:  # keep each block's own components: [sum_b K_b,k * dim_b, count]
                blocks = enumerate(zip(self.tables.blocks, self.offsets, strict=True))
                basis = torch.cat(
                    [basis[self.tables.rows(b, k), m0 : m0 + ir.dim].flatten(0, 1) for b, (ir, m0) in blocks]
                )
            self.register_buffer(f"basis_{k}", basis.to(dtype=dtype, device=device))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> SymmetricPower:
        super()._apply(fn, recurse)
        old = self._buffers[f"basis_{self.degrees[0]}"]
        if old is not None:  # re-derive from float64 rather than cast: exact at the new dtype
            self._register_tables(old.dtype, old.device)
        return self

    def forward(self, a: Tensor, weight: Tensor, z: Tensor | None = None) -> Tensor:
        """``a [n, irreps_in.dim]``, ``weight [species, weight_numel]`` (or ``[weight_numel]``), ``z [n]`` -> output."""
        if self.species is not None and z is None:
            raise ValueError("this power has one weight set per species: pass the species index z")
        n, c = a.shape[0], self.mul
        x = self._channels(a)  # [c, d, n]
        if not self.folded:
            x = x.transpose(0, 1).reshape(1, -1, c * n)  # one batch of c * n columns: the basis is shared
        w = weight.reshape(-1, self.weight_numel // c, c)  # [s, K_total, c]
        top = self.degrees[-1]
        monomials = [x]  # degrees 1 .. top - 1
        for k in range(2, top):
            monomials.append(colex_product(monomials[-1], x, k))
        products = []  # [c, s * M, n] (folded) or [1, R_k, c * n] (basis), one per degree
        for k in self.degrees:
            rows = self._rows(k, w)
            if k < top or k == 1:
                products.append(torch.bmm(rows, monomials[k - 1]))
            else:
                products.append(colex_contract(rows, monomials[k - 2], x, k))
        if self.folded:
            return self._select_species(sum(products[1:], products[0]), z, n)
        return self._apply_weights(torch.cat(products, 1), w, z, n)

    def _channels(self, a: Tensor) -> Tensor:
        """``a [n, mul * dim]`` (mul_ir) -> ``x [mul, dim, n]``: the components of each channel's ``V``."""
        n, blocks, start = a.shape[0], [], 0
        for mul, ir in self.irreps_in:
            blocks.append(a[:, start : start + mul * ir.dim].reshape(n, mul, ir.dim))
            start += mul * ir.dim
        return torch.cat(blocks, 2).permute(1, 2, 0)

    def _rows(self, k: int, w: Tensor) -> Tensor:
        """The matrix that multiplies the degree-``k`` monomials: weights folded in, or the shared basis."""
        basis: Tensor = getattr(self, f"basis_{k}")
        if not self.folded:
            return basis[None]  # [1, R_k, count]
        wk = w.index_select(1, getattr(self, f"weight_rows_{k}"))  # [s, K_k, c]
        return torch.einsum("skc,kmq->csmq", wk, basis).flatten(1, 2)  # [c, s * M, count]

    def _select_species(self, out: Tensor, z: Tensor | None, n: int) -> Tensor:
        """``[c, s * M, n]`` (every species' outputs) -> ``[n, mul_ir]``, each node with its own species."""
        c, m = self.mul, sum(self.tables.block_dims)
        out = out.view(c, -1, m, n)
        if z is not None and self.species is not None:
            out = out.gather(1, z.view(1, 1, 1, n).expand(c, 1, m, n))
        out = out.reshape(c, m, n)
        blocks = [out[:, m0 : m0 + ir.dim] for ir, m0 in zip(self.tables.blocks, self.offsets, strict=True)]
        return torch.cat([block.permute(2, 0, 1).reshape(n, -1) for block in blocks], 1)

    def _apply_weights(self, values: Tensor, w: Tensor, z: Tensor | None, n: int) -> Tensor:
        """``[1, rows, c * n]``: basis values of every degree -> ``[n, mul_ir]``, with each node's weights."""
        c = self.mul
        wn = w.index_select(0, z) if z is not None and self.species is not None else w.expand(n, -1, -1)
        values = values.view(-1, c, n)  # rows: degree by degree, then block by block, then (j, M)
        terms: list[list[Tensor]] = [[] for _ in self.tables.blocks]
        start = 0
        for k in self.degrees:
            for b, ir in enumerate(self.tables.blocks):
                rows = self.weight_slices[b, k]
                size = (rows.stop - rows.start) * ir.dim
                if size:
                    block = values[start : start + size].view(-1, ir.dim, c, n)
                    terms[b].append(torch.einsum("jmcn,njc->ncm", block, wn[:, rows]))
                start += size
        return torch.cat([sum(t[1:], t[0]).reshape(n, -1) for t in terms], 1)
