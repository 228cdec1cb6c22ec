"""The symmetric-power basis of ``power``: multiplicities, monomials, Gaussian moments and the basis itself.

Independent references: e3nn's ``ReducedTensorProducts`` (its own decomposition of symmetric tensors), and function
spaces spanned by *every* coupled tree over *ordered* tuples of irreps with every intermediate irrep (MACE's
over-complete construction), built here with e3nn's ``wigner_3j`` and compared by evaluation at random points, so
neither the monomials nor our trees are involved.
"""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch
from e3nn import o3
from hypothesis import given, settings
from hypothesis import strategies as st

from fdg.runtime import (
    Irrep,
    Irreps,
    SymmetricPower,
    rand_matrix,
    symmetric_basis,
    symmetric_power_decomposition,
    symmetric_power_multiplicity,
)
from fdg.runtime.monomials import exponents, gaussian_gram, monomial_count, monomial_rank, monomial_table
from fdg.runtime.power_basis import Tree, describe

MACE_V = "0e + 1o + 2e + 3o"


def _counts(irreps: Irreps | o3.Irreps) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for mul, ir in irreps:
        out[ir.l, ir.p] = out.get((ir.l, ir.p), 0) + mul
    return {k: v for k, v in out.items() if v}


# ---- multiplicities by characters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("irreps", "formula"),
    [("1o + 2e", "ij=ji"), ("1o + 1e", "ijk=jik=ikj"), ("0e + 1o", "ijk=jik=ikj"), ("0e + 1o", "ijkl=jikl=ikjl=ijlk")],
)
def test_decomposition_matches_e3nn_reduced_tensor_products(irreps: str, formula: str) -> None:
    degree = len(formula.split("=")[0])
    expected = _counts(o3.ReducedTensorProducts(formula, i=irreps).irreps_out)
    ours = {(ir.l, ir.p): m for ir, m in symmetric_power_decomposition(irreps, degree)}
    assert ours == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.sampled_from([1, -1]), st.integers(1, 2)), min_size=1, max_size=3),
    st.integers(0, 4),
)
def test_decomposition_has_the_dimension_of_the_symmetric_power(parts: list, degree: int) -> None:
    irreps = Irreps([(mul, (l, p)) for l, p, mul in parts])
    decomposition = symmetric_power_decomposition(irreps, degree)
    assert sum(ir.dim * m for ir, m in decomposition) == math.comb(irreps.dim + degree - 1, degree)
    assert all(m > 0 for _, m in decomposition)


def test_known_small_cases() -> None:
    # x x^T of a vector: its trace and its traceless symmetric part; the antisymmetric 1e is absent
    assert [(str(ir), m) for ir, m in symmetric_power_decomposition("1o", 2)] == [("0e", 1), ("2e", 1)]
    assert symmetric_power_multiplicity("1o", 2, "1e") == 0
    # the cube of a pseudoscalar is a pseudoscalar; of a vector, no scalar survives inversion
    assert symmetric_power_decomposition("0o", 3) == ((Irrep("0o"), 1),)
    assert symmetric_power_multiplicity("1o", 3, "0e") == 0
    assert symmetric_power_multiplicity("1o", 3, "0o") == 0  # det needs three different vectors
    assert symmetric_power_multiplicity("2x1o", 3, "0o") == 0
    assert symmetric_power_multiplicity("3x1o", 3, "0o") == 1  # x . (y x z)


def test_spec_example_has_116_weights() -> None:
    """SPEC §3: 2x(0e+1o+2e+3o) -> 2x(0e+1o), correlation 3, 2 elements spans a 116-dimensional space."""
    per_channel = sum(symmetric_power_multiplicity(MACE_V, n, ir) for n in (1, 2, 3) for ir in ("0e", "1o"))
    assert 2 * 2 * per_channel == 116
    power = SymmetricPower("2x0e + 2x1o + 2x2e + 2x3o", 3, "2x0e + 2x1o", species=2)
    assert power.species * power.weight_numel == 116


# ---- monomials and Gaussian moments -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dim", "degree"), [(1, 3), (3, 1), (4, 2), (5, 3), (3, 4)])
def test_monomial_table_is_colex_and_ranked(dim: int, degree: int) -> None:
    table = monomial_table(dim, degree)
    expected = sorted(itertools.combinations_with_replacement(range(dim), degree), key=lambda t: t[::-1])
    assert [tuple(row) for row in table.indices.tolist()] == expected
    assert table.size == monomial_count(dim, degree)
    assert torch.equal(monomial_rank(table.indices), torch.arange(table.size))
    if degree > 1:  # monomial = parent * x[last]
        parent = monomial_table(dim, degree - 1).indices[table.parent]
        assert torch.equal(torch.cat([parent, table.last[:, None]], 1), table.indices)


def _wick(factors: tuple[int, ...]) -> int:
    """E[prod x[i] for i in factors] for x ~ N(0, I): the number of perfect matchings pairing equal indices."""
    if not factors:
        return 1
    first, rest = factors[0], factors[1:]
    return sum(_wick(rest[:k] + rest[k + 1 :]) for k in range(len(rest)) if rest[k] == first)


@pytest.mark.parametrize(("dim", "degree"), [(3, 2), (3, 3), (4, 2), (2, 4)])
def test_gaussian_gram_is_isserlis(dim: int, degree: int) -> None:
    table = monomial_table(dim, degree)
    rows = [tuple(r) for r in table.indices.tolist()]
    expected = torch.tensor([[float(_wick(a + b)) for b in rows] for a in rows], dtype=torch.float64)
    assert torch.equal(gaussian_gram(dim, degree).to_dense(), expected)
    assert exponents(table).sum(1).eq(degree).all()


# ---- the basis ------------------------------------------------------------------------------------------------------


@functools.cache
def _e3nn_cg(l1: int, l2: int, l3: int) -> torch.Tensor:
    return o3.wigner_3j(l1, l2, l3, dtype=torch.float64)


def _all_coupled_trees(irreps: Irreps, degree: int, ir_out: Irrep, x: torch.Tensor) -> torch.Tensor:
    """Every left-coupled tree over every *ordered* tuple of irreps of V, every intermediate irrep, evaluated at the
    points ``x [N, dim]`` with e3nn's wigner_3j: ``[trees, N * (2L+1)]``."""
    blocks, start = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            blocks.append((o3.Irrep(ir.l, ir.p), x[:, start : start + ir.dim]))
            start += ir.dim
    target = o3.Irrep(ir_out.l, ir_out.p)
    values = []
    for chosen in itertools.product(blocks, repeat=degree):
        partial = [(chosen[0][0], chosen[0][1])]
        for step, (ir, v) in enumerate(chosen[1:], start=2):
            partial = [
                (out, torch.einsum("na,nb,abc->nc", pv, v, _e3nn_cg(pir.l, ir.l, out.l)))
                for pir, pv in partial
                for out in pir * ir
                if step < degree or out == target  # every intermediate irrep; the last coupling lands in L
            ]
        values += [v.reshape(-1) for ir, v in partial if ir == target]
    return torch.stack(values) if values else torch.zeros(0, x.shape[0] * ir_out.dim, dtype=torch.float64)


def _rank(matrix: torch.Tensor) -> int:
    if not matrix.numel():
        return 0
    s = torch.linalg.svdvals(matrix)
    return int((s > 1e-9 * max(float(s[0]), 1.0)).sum())  # the values are O(1); a vanishing tree is ~1e-16


CASES = [
    (MACE_V, 1, "1o"),
    (MACE_V, 2, "0e"),
    (MACE_V, 2, "2o"),
    (MACE_V, 3, "0e"),
    (MACE_V, 3, "1o"),
    ("0e + 1o", 4, "2e"),
    ("1o + 0e", 4, "2e"),  # the vanishing tree (((1o x 1o -> 1e) x 1o -> 1o) x 1o -> 2e) comes before s^2 (v v)_2
    ("2x1o", 2, "1e"),  # the cross product of the two vectors
    ("3x1o", 3, "0o"),  # their triple product
    ("1o + 1e", 3, "0o"),
    ("1o", 3, "0e"),  # no basis element: x.x x is a vector
]


@pytest.mark.parametrize(("irreps", "degree", "ir_out"), CASES)
def test_basis_spans_every_coupled_tree(irreps: str, degree: int, ir_out: str) -> None:
    """Nothing is lost and nothing is redundant: the basis is independent, of size the multiplicity, and spans the
    same functions as all trees (MACE's over-complete set)."""
    V, L = Irreps(irreps), Irrep(ir_out)
    basis = symmetric_basis(V, degree, L)
    wanted = symmetric_power_multiplicity(V, degree, L)
    x = torch.randn(3 * wanted + 8, V.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = basis(x).transpose(0, 1).reshape(len(basis.coefficients), x.shape[0] * L.dim)
    trees = _all_coupled_trees(V, degree, L, x)
    assert len(basis.coefficients) == len(basis.trees) == wanted
    assert _rank(ours) == wanted
    assert _rank(trees) == wanted
    assert _rank(torch.cat([ours, trees])) == wanted


def _tree_values(irreps: Irreps, tree: Tree, x: torch.Tensor) -> torch.Tensor:
    """One coupled tree evaluated at ``x [N, dim]`` with e3nn's wigner_3j: ``[N, 2L+1]``."""
    pieces, offset = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            pieces.append((ir, x[:, offset : offset + ir.dim]))
            offset += ir.dim
    ir, value = pieces[tree.copies[0]]
    for c, nxt in zip(tree.copies[1:], tree.chain, strict=True):
        ir_c, v = pieces[c]
        value = torch.einsum("na,nb,abc->nc", value, v, _e3nn_cg(ir.l, ir_c.l, nxt.l))
        ir = nxt
    return value


@pytest.mark.parametrize(("irreps", "degree", "ir_out"), CASES)
def test_basis_is_its_transform_of_its_trees(irreps: str, degree: int, ir_out: str) -> None:
    """``B = transform @ trees``: what lets ``power`` evaluate the trees by CG couplings instead of the monomials."""
    V = Irreps(irreps)
    basis = symmetric_basis(V, degree, ir_out)
    x = torch.randn(7, V.dim, dtype=torch.float64)
    trees = [_tree_values(V, tree, x) for tree in basis.trees]
    expected = torch.einsum("kj,jnm->nkm", basis.transform, torch.stack(trees)) if trees else basis(x)
    torch.testing.assert_close(basis(x), expected, atol=1e-10, rtol=0)
    assert torch.equal(basis.transform, basis.transform.tril())


@pytest.mark.parametrize(("irreps", "degree", "ir_out"), CASES)
def test_basis_is_orthonormal_for_gaussian_inputs(irreps: str, degree: int, ir_out: str) -> None:
    """E[<B_j(x), B_k(x)>] = (2L+1) delta_jk for x ~ N(0, I), by the exact Gaussian moments."""
    basis = symmetric_basis(irreps, degree, ir_out)
    gram = gaussian_gram(Irreps(irreps).dim, degree).to_dense()
    c = basis.coefficients
    inner = torch.einsum("jmr,rs,kms->jk", c, gram, c)
    torch.testing.assert_close(inner, Irrep(ir_out).dim * torch.eye(len(c), dtype=torch.float64), atol=1e-10, rtol=0)


@pytest.mark.parametrize(("irreps", "degree", "ir_out"), CASES)
def test_basis_elements_are_equivariant(irreps: str, degree: int, ir_out: str) -> None:
    V, L = Irreps(irreps), Irreps(ir_out)
    basis = symmetric_basis(V, degree, ir_out)
    x = torch.randn(6, V.dim, dtype=torch.float64)
    R = rand_matrix(dtype=torch.float64)
    for Q in (R, -R, -torch.eye(3, dtype=torch.float64)):
        rotated = basis(x @ V.D_from_matrix(Q).T)
        torch.testing.assert_close(rotated, basis(x) @ L.D_from_matrix(Q).T, atol=1e-10, rtol=0)


def test_basis_is_deterministic_and_named_by_its_trees() -> None:
    basis = symmetric_basis(MACE_V, 2, "0e")
    names = tuple(describe(basis.irreps, tree) for tree in basis.trees)
    assert names == ("(0e x 0e -> 0e)", "(1o x 1o -> 0e)", "(2e x 2e -> 0e)", "(3o x 3o -> 0e)")
    # Gram–Schmidt in tree order. Element 0 is s^2 / sqrt(3) (E[s^4] = 3). The tree (1o x 1o -> 0e) is |v|^2 / sqrt(3);
    # its Gaussian inner product with element 0 is E[|v|^2 s^2] / 3 = 1, so the residual is (|v|^2 - s^2) / sqrt(3),
    # of squared norm (E|v|^4 - 2 E[|v|^2 s^2] + E[s^4]) / 3 = (15 - 6 + 3) / 3 = 4, so element 1 is
    # (|v|^2 - s^2) / sqrt(12).
    x = torch.randn(5, 16, dtype=torch.float64)
    v, s = x[:, 1:4], x[:, 0]
    values = basis(x)[:, :, 0]
    torch.testing.assert_close(values[:, 0], s * s / math.sqrt(3), atol=1e-12, rtol=0)
    torch.testing.assert_close(values[:, 1], ((v * v).sum(1) - s * s) / math.sqrt(12), atol=1e-12, rtol=0)


def test_construction_of_the_mace_case_is_fast() -> None:
    """The tables for MACE's product basis (nu=3, outputs 0e + 1o) build in well under a second, then are cached."""
    import time

    V = Irreps("1o + 0e + 2e + 3o")  # MACE's irreps in another order: not cached by the other tests
    start = time.perf_counter()
    for degree, ir in itertools.product((1, 2, 3), ("0e", "1o")):
        symmetric_basis(V, degree, ir)
    first = time.perf_counter() - start
    start = time.perf_counter()
    symmetric_basis(V, 3, "1o")
    assert first < 5.0, first  # generous: shared CI machines; about 0.2 s when quiet
    assert time.perf_counter() - start < 0.01


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="degree"):
        symmetric_basis(MACE_V, 0, "0e")
    with pytest.raises(ValueError, match="non-negative"):
        symmetric_power_decomposition(MACE_V, -1)
    with pytest.raises(ValueError, match="contains 1e"):
        SymmetricPower("2x1o", 2, "2x1e")
