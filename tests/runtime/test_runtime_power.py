"""fdg.runtime.SymmetricPower: vs the formula on the basis, equivariance, autograd, compile, dtypes."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from fdg.runtime import Irrep, Irreps, SymmetricPower, rand_matrix, symmetric_basis
from fdg.runtime.power_program import power_program

pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


def reference(power: SymmetricPower, a: torch.Tensor, weight: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
    """The module docstring's formula, term by term: each basis element evaluated on its monomials, weighted."""
    n, c, V = a.shape[0], power.mul, power.program.irreps
    blocks, start = [], 0
    for mul, ir in power.irreps_in:  # channel c of a, as a vector of V
        blocks.append(a[:, start : start + mul * ir.dim].reshape(n, mul, ir.dim))
        start += mul * ir.dim
    x = torch.cat(blocks, 2)
    w = weight.reshape(-1, power.weight_numel // c, c)
    wn = w[z] if z is not None else (w if weight.dim() == 2 else w.expand(n, -1, -1))  # per species, node, or shared
    outs = []
    for b, ir in enumerate(power.program.blocks):
        total = torch.zeros(n, c, ir.dim)
        for k in range(1, power.program.nu + 1):
            values = symmetric_basis(V, k, ir)(x)  # [n, c, K, M]
            total = total + torch.einsum("ncjm,njc->ncm", values, wn[:, power.weight_rows(b, k)])
        outs.append((total / sum(power.program.counts[b]) ** 0.5).reshape(n, -1))
    return torch.cat(outs, 1)


CASES = [
    ("3x0e + 3x1o + 3x2e", 3, "3x0e + 3x1o", 2),
    ("2x0e + 2x1o + 2x2e + 2x3o", 3, "2x0e + 2x1o", 3),
    ("2x1o", 2, "2x0e + 2x2e", None),  # only degree 2 reaches the outputs
    ("2x1o + 2x0e", 4, "2x1o + 2x0e", 2),  # V not sorted, outputs not sorted, four degrees
    ("2x1o + 2x0e", 1, "2x1o", 5),
    ("1x0e + 1x1o + 1x1o + 1x1o", 3, "1x1e + 1x0o", 2),  # repeated irreps: cross and triple products
]


def _inputs(power: SymmetricPower, n: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, power.irreps_in.dim, generator=g)
    shape = (power.species, power.weight_numel) if power.species else (power.weight_numel,)
    weight = torch.randn(*shape, generator=g)
    z = torch.randint(0, power.species, (n,), generator=g) if power.species else None
    return a, weight, z


@pytest.mark.parametrize(("irreps_in", "nu", "irreps_out", "species"), CASES)
def test_matches_the_formula_and_is_equivariant(irreps_in, nu, irreps_out, species) -> None:
    power = SymmetricPower(irreps_in, nu, irreps_out, species=species)
    a, weight, z = _inputs(power)
    out = power(a, weight, z)
    torch.testing.assert_close(out, reference(power, a, weight, z), atol=1e-12, rtol=0)
    R = rand_matrix()
    for Q in (R, -R):
        rotated = power(a @ Irreps(irreps_in).D_from_matrix(Q).T, weight, z)
        torch.testing.assert_close(rotated, out @ Irreps(irreps_out).D_from_matrix(Q).T, atol=1e-10, rtol=0)


def test_per_node_weights() -> None:
    """Without species, a ``[n, weight_numel]`` weight gives each node its own weights (external weights)."""
    power = SymmetricPower("2x0e + 2x1o + 2x2e", 3, "2x0e + 2x1o", species=None)
    a, _, _ = _inputs(power)
    weight = torch.randn(a.shape[0], power.weight_numel)
    torch.testing.assert_close(power(a, weight), reference(power, a, weight, None), atol=1e-12, rtol=0)
    for node in (0, 3):  # and equals the shared-weights module evaluated with that node's weights
        torch.testing.assert_close(power(a, weight)[node], power(a[node : node + 1], weight[node])[0])


def test_second_derivatives() -> None:
    power = SymmetricPower("1x0e + 1x1o", 3, "1x0e + 1x1o", species=2)  # numerical Hessians: keep it tiny
    a, weight, z = _inputs(power, n=2)
    a.requires_grad_()
    weight.requires_grad_()

    def f(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return power(a, weight, z)

    assert torch.autograd.gradcheck(f, (a, weight))
    assert torch.autograd.gradgradcheck(f, (a, weight))


def test_program_of_the_mace_case() -> None:
    """The trees share prefixes and last couplings: 10 couplings build the trie, 7 last couplings finish 27 trees."""
    program = power_program(Irreps("0e + 1o + 2e + 3o"), 3, (Irrep("0e"), Irrep("1o")))
    assert program.counts == ((1, 4, 8), (1, 3, 12))
    assert sum(len(terms) for final in program.finals for terms in final.terms) == 27
    assert len(program.directs) == 2  # the two trees of degree 1
    assert (len(program.couplings), len(program.finals)) == (10, 7)
    # all three orders of a bilinear step occur, so the formula test on this case covers each
    assert {step.order for step in (*program.couplings, *program.finals)} == {"outer", "x", "u"}
    # every trie node is computed after its parent, and every node a final reads exists
    computed = set(range(len(program.leaves)))
    for step in program.couplings:
        assert step.parent in computed
        computed |= set(step.children)
    assert computed == set(range(program.values))
    assert {node for final in program.finals for terms in final.terms for node, _ in terms} <= computed


def test_unit_variance_in_gives_unit_variance_out() -> None:
    """Component normalization: standard normal inputs and weights give outputs of mean square 1 per component."""
    power = SymmetricPower("4x0e + 4x1o + 4x2e + 4x3o", 3, "4x0e + 4x1o", species=None)
    g = torch.Generator().manual_seed(0)
    squares = []
    for _ in range(100):  # fresh weights each time: the average is over weights and inputs
        a = torch.randn(100, power.irreps_in.dim, generator=g)
        weight = torch.randn(power.weight_numel, generator=g)
        squares.append(power(a, weight).pow(2).mean(0))
    mean_square = torch.stack(squares).mean(0)
    for mul_ir, block in zip(power.irreps_out, Irreps(power.irreps_out).slices(), strict=True):
        assert 0.85 < float(mean_square[block].mean()) < 1.15, (mul_ir, mean_square[block].mean())


def test_float32_module_moved_to_float64_has_exact_tables() -> None:
    torch.set_default_dtype(torch.float32)
    power = SymmetricPower("2x0e + 2x1o", 3, "2x1o", species=2).double()
    torch.set_default_dtype(torch.float64)
    exact = SymmetricPower("2x0e + 2x1o", 3, "2x1o", species=2)
    for name, buffer in exact.named_buffers():
        assert torch.equal(dict(power.named_buffers())[name], buffer), name


def test_state_dict_copy_and_pickle() -> None:
    power = SymmetricPower("2x0e + 2x1o", 2, "2x0e + 2x1o", species=2)
    a, weight, z = _inputs(power)
    buffer = io.BytesIO()
    torch.save(power, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(a, weight, z), power(a, weight, z))
    torch.testing.assert_close(copy.deepcopy(power)(a, weight, z), power(a, weight, z))
    assert {name.split("_")[0] for name in power.state_dict()} == {"transform", "final"}  # nu = 2: no trie nodes


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile_fullgraph(backend: str) -> None:
    power = SymmetricPower("2x0e + 2x1o + 2x2e", 3, "2x0e + 2x1o", species=3)
    compiled = torch.compile(power, fullgraph=True, backend=backend, dynamic=True)
    for n in (5, 9):  # two sizes: the graph is shape-polymorphic
        a, weight, z = _inputs(power, n=n, seed=n)
        a.requires_grad_()
        out = compiled(a, weight, z)
        torch.testing.assert_close(out, power(a, weight, z), atol=1e-12, rtol=0)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), a)
        (expected,) = torch.autograd.grad(power(a, weight, z).pow(2).sum(), a)
        torch.testing.assert_close(grad, expected, atol=1e-12, rtol=0)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="one multiplicity"):
        SymmetricPower("2x0e + 3x1o", 2, "2x0e")
    with pytest.raises(ValueError, match="one multiplicity"):
        SymmetricPower("2x0e", 0, "2x0e")
    power = SymmetricPower("2x0e + 2x1o", 2, "2x0e", species=2)
    a, weight, _ = _inputs(power)
    with pytest.raises(ValueError, match="species index"):
        power(a, weight)
