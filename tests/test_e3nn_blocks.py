"""Per-path output blocks, ``sort``, ``cat``, ``select``, the activations and the norm activation against e3nn:
NequIP's and MACE's ``irreps_mid`` (a ``uvu`` TensorProduct that keeps one output block per instruction, sorted,
then a Linear over every block), with the reference's own weights, in float64 to 1e-10, under every lowering of the
couple, and equivariant under rotations and inversion."""

from __future__ import annotations

import math

import pytest
import torch
from e3nn import nn as e3nn_nn
from e3nn import o3
from e3nn.math import soft_one_hot_linspace

import fdg
from fdg.runtime import Irreps, rand_matrix

pytestmark = pytest.mark.usefixtures("float64_default")  # e3nn builds its CG tensors in the default dtype

MID = """
diagram NequIPMid(mul = 4) {
    input h : mul x (0e + 1o + 2e) over node
    input src : index edge -> node
    input dst : index edge -> node
    input vec : 1o over edge
    input R : weights over edge
    m = couple(h[src], sh(vec, 2)) -> 0e + 1o + 2e + 1e [mode = uvu, weights = R, blocks = paths]
    mid = sort(sum(m, by = dst))
    output y = linear(mid) -> mul x (0e + 1o + 2e)
}
"""


def reference(mul: int) -> tuple[o3.TensorProduct, o3.Linear]:
    """e3nn's form, as nequip and mace-torch build it: an instruction per (input, harmonic, output irrep) reached,
    the output irreps sorted with the instructions remapped, then an o3.Linear over the sorted blocks."""
    irreps_h, irreps_sh = o3.Irreps(f"{mul}x0e + {mul}x1o + {mul}x2e"), o3.Irreps.spherical_harmonics(2)
    wanted = o3.Irreps("0e + 1o + 2e + 1e")
    mid, instructions = [], []
    for i, (m, ir_in) in enumerate(irreps_h):
        for j, (_, ir_edge) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_edge:
                if ir_out in wanted:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((m, ir_out))
    irreps_mid, p, _ = o3.Irreps(mid).sort()
    instructions = [(i, j, p[k], mode, train) for i, j, k, mode, train in instructions]
    tp = o3.TensorProduct(
        irreps_h, irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False
    ).double()
    return tp, o3.Linear(irreps_mid, irreps_h).double()


def _inputs(module: torch.nn.Module, mul: int = 4, nodes: int = 6, edges: int = 17) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    h = torch.randn(nodes, 9 * mul, generator=g, dtype=torch.float64)
    src, dst = torch.randint(0, nodes, (edges,), generator=g), torch.randint(0, nodes, (edges,), generator=g)
    vec = torch.randn(edges, 3, generator=g, dtype=torch.float64)
    R = torch.randn(edges, module.weight_numel["R"], generator=g, dtype=torch.float64)
    return {"h": h, "src": src, "dst": dst, "vec": vec, "R": R}


@pytest.mark.parametrize("lowering", [None, "dense", "grouped", "fused"])
def test_per_path_blocks_sorted_then_linear_equal_e3nn(lowering: str | None) -> None:
    module = fdg.compile(MID, pin={"m": lowering} if lowering else None).double()
    tp, lin = reference(4)
    assert module.weight_numel["R"] == tp.weight_numel and module.y_weight.numel() == lin.weight_numel
    mid = fdg.api.lower_source(MID).out("mid")
    assert isinstance(mid, fdg.ir.Feature) and str(mid.irreps) == str(tp.irreps_out)  # irreps_mid: sorted, not merged
    with torch.no_grad():
        module.y_weight.normal_()
        lin.weight.copy_(module.y_weight)
    x = _inputs(module)
    sh = o3.spherical_harmonics(list(range(3)), x["vec"], normalize=True, normalization="component")
    messages = tp(x["h"][x["src"]], sh, x["R"])
    want = lin(messages.new_zeros(len(x["h"]), messages.shape[1]).index_add(0, x["dst"], messages))
    torch.testing.assert_close(module(**x), want, atol=1e-10, rtol=1e-10)


def test_per_path_blocks_are_equivariant_under_rotations_and_inversion() -> None:
    module = fdg.compile(MID).double()
    x = _inputs(module)
    irreps = Irreps("4x0e + 4x1o + 4x2e")  # fdg's Wigner D, exact in float64 (e3nn's is good to about 1e-7)
    rotation = rand_matrix(generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for matrix in (rotation, -torch.eye(3, dtype=torch.float64), -rotation):
        D = irreps.D_from_matrix(matrix)
        turned = dict(x, h=x["h"] @ D.T, vec=x["vec"] @ matrix.T)
        torch.testing.assert_close(module(**turned), module(**x) @ D.T, atol=1e-10, rtol=1e-10)


def test_per_path_blocks_second_derivatives() -> None:
    module = fdg.compile(MID.replace("mul = 4", "mul = 1")).double()
    x = _inputs(module, mul=1, nodes=3, edges=4)
    leaves = tuple(x[k].clone().requires_grad_() for k in ("h", "vec", "R"))

    def f(h: torch.Tensor, vec: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return module(h, x["src"], x["dst"], vec, R)

    assert torch.autograd.gradgradcheck(f, leaves)


CAT_SELECT = """
diagram Pieces() {
    input a : 4x0e + 2x1o
    input b : 3x0e + 2x2e + 1x1o
    both = cat(a, b)
    middle = select(both, 1, 4)
    output y = linear(both) -> 5x0e + 3x1o
    output z = middle
}
"""


def test_cat_and_select_are_e3nn_concatenation_and_block_slicing() -> None:
    module = fdg.compile(CAT_SELECT).double()
    ia, ib = o3.Irreps("4x0e + 2x1o"), o3.Irreps("3x0e + 2x2e + 1x1o")
    both = ia + ib  # e3nn's concatenation: blocks appended, not merged
    lin = o3.Linear(both, o3.Irreps("5x0e + 3x1o")).double()
    with torch.no_grad():
        module.y_weight.normal_()
        lin.weight.copy_(module.y_weight)
    a, b = ia.randn(7, -1), ib.randn(7, -1)
    y, z = module(a, b)
    joined = torch.cat([a, b], dim=1)
    torch.testing.assert_close(y, lin(joined), atol=1e-10, rtol=1e-10)
    start, stop = both.slices()[1].start, both.slices()[3].stop  # blocks 1..3 of the joined wire
    torch.testing.assert_close(z, joined[:, start:stop], atol=0, rtol=0)
    assert str(fdg.api.lower_source(CAT_SELECT).out("middle").irreps) == str(both[1:4])


ACTIVATIONS = """
diagram Acts() {
    input x : 4x0e + 3x0o + 2x0e
    odd = select(x, 1, 2)
    output y = cat(silu(select(x, 0, 1)), tanh(odd), abs(odd), ssp(select(x, 2, 3)), sigmoid(select(x, 0, 1)))
}
"""


def test_activations_equal_e3nn_activation_with_its_normalization_and_parities() -> None:
    module = fdg.compile(ACTIVATIONS).double()
    F = torch.nn.functional
    functions = [F.silu, torch.tanh, torch.abs, lambda t: F.softplus(t) - math.log(2.0), torch.sigmoid]
    reference = e3nn_nn.Activation("4x0e + 3x0o + 3x0o + 2x0e + 4x0e", functions)
    assert str(fdg.api.lower_source(ACTIVATIONS).out("y").irreps) == str(reference.irreps_out)  # tanh odd, abs even
    x = o3.Irreps("4x0e + 3x0o + 2x0e").randn(6, -1)
    blocks = x.split([4, 3, 2], dim=1)
    expected = reference(torch.cat([blocks[0], blocks[1], blocks[1], blocks[2], blocks[0]], dim=1))
    torch.testing.assert_close(module(x), expected, atol=1e-12, rtol=1e-12)
    inverted = Irreps("4x0e + 3x0o + 2x0e").D_from_matrix(-torch.eye(3, dtype=torch.float64))
    out = Irreps(str(reference.irreps_out)).D_from_matrix(-torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(module(x @ inverted.T), module(x) @ out.T, atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradgradcheck(module, (x[:2].clone().requires_grad_(),))


GATE = """
diagram Gated() {
    input x : 4x0e + 6x0e + 2x0o + 2x1o + 3x2e + 1x1e
    output y = gate(silu(select(x, 0, 1)), sigmoid(select(x, 1, 2)), select(x, 3, 6))
    output z = gate(silu(select(x, 0, 1)), tanh(select(x, 2, 3)), select(x, 3, 4))
}
"""


def test_gate_equals_e3nn_gate() -> None:
    """``gate(silu(s), sigmoid(g), v)`` is e3nn's ``Gate(s, [silu], g, [sigmoid], v)``; odd gates (tanh of 0o) flip
    the gated parities, as e3nn's elementwise product does.  e3nn's Gate reads its input sorted (``irreps_in``: the
    three parts' blocks by degree, odd before even), so the reference gets the same numbers in that layout."""
    module = fdg.compile(GATE).double()
    F = torch.nn.functional
    even = e3nn_nn.Gate("4x0e", [F.silu], "6x0e", [torch.sigmoid], "2x1o + 3x2e + 1x1e")
    odd = e3nn_nn.Gate("4x0e", [F.silu], "2x0o", [torch.tanh], "2x1o")
    lowered = fdg.api.lower_source(GATE)
    assert [str(lowered.out(n).irreps) for n in ("y", "z")] == [str(even.irreps_out), str(odd.irreps_out)]
    irreps = Irreps("4x0e + 6x0e + 2x0o + 2x1o + 3x2e + 1x1e")
    x = o3.Irreps(str(irreps)).randn(6, -1)
    s, g, o, v = x[:, :4], x[:, 4:10], x[:, 10:12], x[:, 12:]
    y, z = module(x)
    assert str(even.irreps_in) == "10x0e+2x1o+1x1e+3x2e" and str(odd.irreps_in) == "2x0o+4x0e+2x1o"
    torch.testing.assert_close(y, even(torch.cat([s, g, v[:, :6], v[:, 21:], v[:, 6:21]], dim=1)), atol=1e-12, rtol=0)
    torch.testing.assert_close(z, odd(torch.cat([o, s, v[:, :6]], dim=1)), atol=1e-12, rtol=0)
    for matrix in (rand_matrix(generator=torch.Generator().manual_seed(3), dtype=torch.float64), -torch.eye(3)):
        moved = module(x @ irreps.D_from_matrix(matrix).T)
        for got, result, reference in zip(moved, (y, z), (even, odd), strict=True):
            D = Irreps(str(reference.irreps_out)).D_from_matrix(matrix)
            torch.testing.assert_close(got, result @ D.T, atol=1e-12, rtol=1e-12)


NORM = """
diagram Norms() {
    input x : 3x0e + 2x1o + 2x2e + 1x0o + 1x3o
    output y = norm_activation(x, sigmoid)
    output z = norm_activation(x, tanh)
}
"""


def test_norm_activation_equals_e3nn_norm_activation() -> None:
    """``norm_activation(x, f)`` is e3nn's ``NormActivation(x, f)`` (normalized, epsilon 1e-8, no bias), near zero
    vectors included, equivariant under rotations and inversion for any f, and differentiable twice."""
    module = fdg.compile(NORM).double()
    irreps = Irreps("3x0e + 2x1o + 2x2e + 1x0o + 1x3o")
    x = o3.Irreps(str(irreps)).randn(8, -1)
    x[0, 3:6] = 0.0  # a zero vector: e3nn clamps its squared norm at epsilon**2
    x[1, 6:9] = 1e-9  # a vector shorter than epsilon
    y, z = module(x)
    for got, f in ((y, torch.sigmoid), (z, torch.tanh)):
        torch.testing.assert_close(got, e3nn_nn.NormActivation(str(irreps), f)(x), atol=1e-12, rtol=1e-12)
    for matrix in (rand_matrix(generator=torch.Generator().manual_seed(6), dtype=torch.float64), -torch.eye(3)):
        D = irreps.D_from_matrix(matrix)
        for got, result in zip(module(x @ D.T), (y, z), strict=True):
            torch.testing.assert_close(got, result @ D.T, atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradgradcheck(lambda t: module(t)[0], (x[2:4].clone().requires_grad_(),))


RADIAL = """
diagram Radial(r_max = 5.0, n = 8) {
    input vec : 1o over edge
    r = length(vec)
    features = couple(bessel(r, n, r_max), cutoff(r, r_max, 6)) -> n x 0e [mode = uvu, weights = none]
    hidden = silu(linear(features) -> 16x0e)
    output R = linear(hidden) -> 12x0e
}
"""


def polynomial_cutoff(r: torch.Tensor, r_max: float, p: int) -> torch.Tensor:
    """MACE's PolynomialCutoff, written out (mace/modules/radial.py)."""
    x = r / r_max
    envelope = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return envelope * (x < 1)


def test_radial_features_and_mlp_equal_e3nn_bessel_and_fully_connected_net() -> None:
    """MACE's radial embedding (Bessel basis times the polynomial cutoff) and its radial MLP (e3nn's
    FullyConnectedNet: linear layers normalized by fan-in, silu normalized to unit second moment)."""
    module = fdg.compile(RADIAL).double()
    net = e3nn_nn.FullyConnectedNet([8, 16, 12], torch.nn.functional.silu).double()
    with torch.no_grad():
        module.hidden_1_weight.normal_()
        module.R_weight.normal_()
        net[0].weight.copy_(module.hidden_1_weight.view(8, 16))
        net[1].weight.copy_(module.R_weight.view(16, 12))
    vec = torch.randn(30, 3, dtype=torch.float64) * 2.5  # some beyond r_max = 5
    r = vec.norm(dim=1)
    basis = soft_one_hot_linspace(r, 0.0, 5.0, 8, basis="bessel", cutoff=False)
    expected = net(basis * polynomial_cutoff(r, 5.0, 6)[:, None])
    torch.testing.assert_close(module(vec), expected, atol=1e-10, rtol=1e-10)
    rotation = rand_matrix(generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(module(-vec @ rotation.T), module(vec), atol=1e-10, rtol=1e-10)  # invariant
    assert torch.autograd.gradgradcheck(module, (vec[:4].clone().requires_grad_(),))  # forces, and their training
