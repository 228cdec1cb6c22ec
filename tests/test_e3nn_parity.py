"""Differential tests: compiled diagrams against e3nn 0.6, in float64, to 1e-10.

The e3nn side is built here independently of fdg's path enumeration: the instruction list is
written out as SPEC section 3 states it (``for i1 in a: for i2 in b: for i_out in out``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from e3nn import o3

import fdg

pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


CASES = {
    # mode: (a, b, out)
    "uvw": ("4x0e + 3x1o + 2x2e", "2x0e + 1o + 2e", "3x0e + 2x1o + 2x1e + 2e + 2x2o"),
    "uvu": ("4x0e + 4x1o + 4x2e", "0e + 1o + 2e", "4x0e + 4x1o + 4x2e + 4x1e + 4x2o"),
    "uvv": ("0e + 1o + 2x2e", "3x0e + 3x1o", "3x0e + 3x1o + 3x1e + 3x2e"),
    "uuw": ("3x0e + 3x1o + 2x2e", "3x0e + 3x1o", "2x0e + 2x1o + 2x1e + 2x2e"),
    "uuu": ("3x0e + 3x1o + 3x2e", "3x0e + 3x1o + 3x2e", "3x0e + 3x1o + 3x1e + 3x2e + 3x3o"),
    "uvuv": ("2x0e + 2x1o", "3x0e + 3x1o", "6x0e + 6x1o + 6x1e + 6x2e"),
}
ALIASES = {"uvw": "full", "uvu": "channelwise", "uuu": "elementwise", "uvuv": "outer"}


def e3nn_instructions(a: o3.Irreps, b: o3.Irreps, out: o3.Irreps, mode: str, weighted: bool) -> list[tuple]:
    def mul_ok(m1: int, m2: int, mo: int) -> bool:
        return {
            "uvw": True,
            "uvu": mo == m1,
            "uvv": mo == m2,
            "uuw": m1 == m2 and (weighted or mo == 1),
            "uuu": m1 == m2 == mo,
            "uvuv": mo == m1 * m2,
        }[mode]

    return [
        (i1, i2, io, mode, weighted)
        for i1, (m1, ir1) in enumerate(a)
        for i2, (m2, ir2) in enumerate(b)
        for io, (mo, ir_out) in enumerate(out)
        if ir_out in ir1 * ir2 and mul_ok(m1, m2, mo)
    ]


def only_parameter(module: torch.nn.Module) -> torch.nn.Parameter:
    (param,) = module.parameters()
    return param


@pytest.mark.parametrize("weights", ["learned", "input", "none"])
@pytest.mark.parametrize("mode", list(CASES))
def test_couple_matches_e3nn(mode: str, weights: str) -> None:
    if weights == "none" and mode == "uvw":
        pytest.skip("e3nn requires weights for uvw (fdg reports it as an error, tested in the catalog)")
    a, b, out = CASES[mode]
    if weights == "none" and mode == "uuw":
        out = "0e + 1o + 1e + 2e"  # unweighted uuw sums its channels into multiplicity 1
    spelled = ALIASES.get(mode, mode) if weights == "learned" else mode
    option = {"learned": "", "input": ", weights = R", "none": ", weights = none"}[weights]
    source = f"""
    diagram T() {{
        input x : {a}
        input y : {b}
        input R : weights
        output z = couple(x, y) -> {out} [mode = {spelled}{option}]
    }}"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = fdg.compile(source)
    # the only warning: R is unused unless it is the weights
    heads = [str(w.message).splitlines()[0].split(": warning: ")[-1] for w in caught]
    assert heads == ([] if weights == "input" else ["input 'R' is never used by an output"])
    ia, ib, io = o3.Irreps(a), o3.Irreps(b), o3.Irreps(out)
    instructions = e3nn_instructions(ia, ib, io, mode, weights != "none")
    tp = o3.TensorProduct(
        ia,
        ib,
        io,
        instructions,
        irrep_normalization="component",
        path_normalization="element",
        shared_weights=weights != "input",
        internal_weights=weights == "learned",
    )
    n = 7
    x, y = ia.randn(n, -1), ib.randn(n, -1)
    if weights == "input":
        R = torch.randn(n, tp.weight_numel)
        assert module.weight_numel == {"R": tp.weight_numel}
        expected, got = tp(x, y, R), module(x, y, R)
    else:
        if weights == "learned":
            tp.weight.data.copy_(only_parameter(module).detach())
        expected, got = tp(x, y), module(x=x, y=y, R=torch.zeros(n, 0))
    assert got.shape == expected.shape == (n, io.dim)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def test_learned_per_species_couple_matches_e3nn_with_gathered_weights() -> None:
    source = """
    diagram T(species = 3) {
        input x : 4x0e + 4x1o
        input y : 0e + 1o
        input z : index batch -> species
        output o = couple(x, y) -> 4x0e + 4x1o + 4x1e [mode = uvu, weights = learned[z]]
    }"""
    module = fdg.compile(source)
    ia, ib, io = o3.Irreps("4x0e + 4x1o"), o3.Irreps("0e + 1o"), o3.Irreps("4x0e + 4x1o + 4x1e")
    tp = o3.TensorProduct(
        ia, ib, io, e3nn_instructions(ia, ib, io, "uvu", True), shared_weights=False, internal_weights=False
    )
    table = only_parameter(module)
    assert table.shape == (3, tp.weight_numel)
    n = 11
    x, y, z = ia.randn(n, -1), ib.randn(n, -1), torch.randint(0, 3, (n,))
    torch.testing.assert_close(module(x, y, z), tp(x, y, table[z]), atol=1e-10, rtol=1e-10)


def test_linear_matches_e3nn() -> None:
    a, out = "5x0e + 3x1o + 2x1o + 4x2e + 1x3o", "2x0e + 4x1o + 3x2e + 2x1e"
    with pytest.warns(fdg.FdgWarning, match="1e in the output of linear is reached by no path"):
        module = fdg.compile(f"diagram L() {{ input x : {a}\n output y = linear(x) -> {out} }}")
    lin = o3.Linear(o3.Irreps(a), o3.Irreps(out))
    lin.weight.data.copy_(only_parameter(module).detach())
    x = o3.Irreps(a).randn(9, -1)
    torch.testing.assert_close(module(x), lin(x), atol=1e-10, rtol=1e-10)


def test_linear_with_biases_matches_e3nn() -> None:
    """``[bias = true]`` is e3nn's ``Linear(biases=True)``: a bias per channel of every 0e output block, including a
    0e output no path reaches (there it is the whole output), zeros at first; both carried over, non-trivial."""
    a, out = "5x0e + 3x1o + 2x0e + 4x2e", "2x0e + 4x1o + 3x2e + 3x0o + 2x1e + 4x0e"
    source = f"diagram L() {{ input x : {a}\n output y = linear(x) -> {out} [bias = true, unreached = ignore] }}"
    module = fdg.compile(source).double()
    assert not module.y_bias.detach().any()  # zeros, as e3nn's
    lin = o3.Linear(o3.Irreps(a), o3.Irreps(out), biases=True).double()
    assert (module.y_weight.numel(), module.y_bias.numel()) == (lin.weight_numel, lin.bias_numel)
    assert lin.bias_numel == 6  # 2x0e and 4x0e; 3x0o is not a scalar
    with torch.no_grad():
        module.y_weight.normal_()
        module.y_bias.normal_()
        lin.weight.copy_(module.y_weight)
        lin.bias.copy_(module.y_bias)
    x = o3.Irreps(a).randn(9, -1, dtype=torch.float64)
    torch.testing.assert_close(module(x), lin(x), atol=1e-10, rtol=1e-10)
    rotation = o3.rand_matrix(dtype=torch.float64)
    for D_in, D_out in ((o3.Irreps(a).D_from_matrix(rotation), o3.Irreps(out).D_from_matrix(rotation)),
                        (o3.Irreps(a).D_from_matrix(-torch.eye(3, dtype=torch.float64)),
                         o3.Irreps(out).D_from_matrix(-torch.eye(3, dtype=torch.float64)))):  # fmt: skip
        torch.testing.assert_close(module(x @ D_in.T), module(x) @ D_out.T, atol=1e-10, rtol=1e-10)


def test_linear_per_species_matches_e3nn() -> None:
    a, out = "4x0e + 2x1o", "3x0e + 3x1o"
    module = fdg.compile(
        f"diagram L() {{ input x : {a}\n input z : index batch -> 5\n"
        f"output y = linear(x) -> {out} [weights = learned[z]] }}"
    )
    lin = o3.Linear(o3.Irreps(a), o3.Irreps(out), shared_weights=False, internal_weights=False)
    table = only_parameter(module)
    x, z = o3.Irreps(a).randn(9, -1), torch.randint(0, 5, (9,))
    torch.testing.assert_close(module(x, z), lin(x, table[z]), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("lmax", [0, 1, 2, 3, 5])
def test_sh_matches_e3nn(lmax: int) -> None:
    module = fdg.compile(f"diagram S() {{ input v : 1o\n output y = sh(v, {lmax}) }}")
    v = torch.randn(20, 3)
    expected = o3.spherical_harmonics(list(range(lmax + 1)), v, normalize=True, normalization="component")
    torch.testing.assert_close(module(v), expected, atol=1e-10, rtol=1e-10)


def e3nn_messages(
    mul: int, mode: str, out: str, nodes: int, edges: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Random graph inputs, and e3nn's per-edge messages couple(h[src], sh(vec, 2)) under per-edge weights R."""
    h_irreps, sh_irreps, irreps_out = (
        o3.Irreps(f"{mul}x0e + {mul}x1o + {mul}x2e"),
        o3.Irreps("0e + 1o + 2e"),
        o3.Irreps(out),
    )
    instructions = e3nn_instructions(h_irreps, sh_irreps, irreps_out, mode, True)
    tp = o3.TensorProduct(h_irreps, sh_irreps, irreps_out, instructions, shared_weights=False, internal_weights=False)
    h, vec = h_irreps.randn(nodes, -1), torch.randn(edges, 3)
    src, dst = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,))
    R = torch.randn(edges, tp.weight_numel)
    Y = o3.spherical_harmonics(sh_irreps, vec, normalize=True, normalization="component")
    return {"h": h, "vec": vec, "R": R, "src": src, "dst": dst}, tp(h[src], Y, R)


def test_message_passing_matches_e3nn() -> None:
    """The NequIPConv diagram of SPEC section 2 against the same layer written with e3nn."""
    module = fdg.compile("diagrams/nequip.fdg", mul=8)
    mid = o3.Irreps("8x0e + 8x1o + 8x2e + 8x1e + 8x2o")
    inputs, messages = e3nn_messages(8, "uvu", str(mid), nodes=6, edges=20)
    lin = o3.Linear(mid, o3.Irreps("8x0e + 8x1o + 8x2e"))
    lin.weight.data.copy_(only_parameter(module).detach())
    expected = lin(torch.zeros(6, mid.dim).index_add(0, inputs["dst"], messages) * 0.1)
    torch.testing.assert_close(module(**inputs), expected, atol=1e-10, rtol=1e-10)


def test_tfn_diagram_equals_e3nn_uvw_convolution() -> None:
    """diagrams/tfn.fdg is e3nn's uvw TensorProduct of h[src] and sh(vec) under per-edge weights, scatter-summed."""
    module = fdg.compile("diagrams/tfn.fdg", mul=4).double()
    inputs, messages = e3nn_messages(4, "uvw", "4x0e + 4x1o + 4x2e", nodes=5, edges=12)
    expected = torch.zeros(5, messages.shape[1]).index_add(0, inputs["dst"], messages)
    torch.testing.assert_close(module(**inputs), expected, atol=1e-10, rtol=1e-10)


def test_float32_agrees_with_e3nn_within_1e5() -> None:
    torch.set_default_dtype(torch.float32)  # the fixture restores it
    module = fdg.compile("diagrams/tfn.fdg", mul=4)
    inputs, messages = e3nn_messages(4, "uvw", "4x0e + 4x1o + 4x2e", nodes=5, edges=12)
    expected = torch.zeros(5, messages.shape[1]).index_add(0, inputs["dst"], messages)
    got = module(**inputs)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
