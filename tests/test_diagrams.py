"""The architecture families of diagrams/: shapes, and what makes each family itself, against references.

tests/test_modules.py checks every diagram for equivariance; here each family is rebuilt independently (e3nn 0.6
modules given the compiled module's weights, or the paper's equations in plain torch) and compared in float64.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from e3nn import o3
from module_inputs import feature_irreps, random_inputs
from test_e3nn_parity import e3nn_instructions

import fdg
from fdg.api import diagram_names
from fdg.runtime import FdgModule, rand_matrix

ROOT = Path(__file__).resolve().parents[1]
DIAGRAMS = ROOT / "diagrams"
CASES = [(path, name) for path in sorted(DIAGRAMS.glob("*.fdg")) for name in diagram_names(path)]
SIZES = {"node": 7, "edge": 19}


pytestmark = pytest.mark.usefixtures("float64_default")  # every test here runs in float64


def weights(module: FdgModule) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in module.named_parameters()}


def linear(irreps_in: str | o3.Irreps, irreps_out: str | o3.Irreps, weight: torch.Tensor) -> o3.Linear:
    """e3nn's Linear holding fdg's weights (SPEC section 3: the same layout)."""
    lin = o3.Linear(o3.Irreps(irreps_in), o3.Irreps(irreps_out))
    lin.weight.data.copy_(weight)
    return lin


def tensor_product(
    a: str | o3.Irreps, b: str | o3.Irreps, out: str | o3.Irreps, mode: str, **kw: bool
) -> o3.TensorProduct:
    a, b, out = o3.Irreps(a), o3.Irreps(b), o3.Irreps(out)
    weighted = kw.pop("weighted", True)
    return o3.TensorProduct(a, b, out, e3nn_instructions(a, b, out, mode, weighted), **kw)


def sh(vec: torch.Tensor, lmax: int) -> torch.Tensor:
    return o3.spherical_harmonics(list(range(lmax + 1)), vec, normalize=True, normalization="component")


def scatter(x: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    return x.new_zeros(size, x.shape[1]).index_add(0, index, x)


@pytest.mark.parametrize(("path", "name"), CASES, ids=[name for _, name in CASES])
def test_outputs_have_the_declared_shapes_and_are_not_zero(path: Path, name: str) -> None:
    """At the default parameters: each output is [rows of its axis, irreps.dim], finite and not identically zero."""
    module = fdg.compile(path, diagram=name)
    inputs = random_inputs(module, sizes=SIZES)
    result = module(**inputs)
    found = result if isinstance(result, tuple) else (result,)
    assert len(found) == len(module.outputs)
    for (out, description), y in zip(module.outputs.items(), found, strict=True):
        irreps, axis = feature_irreps(description), description.split(" over ")[1]
        assert irreps is not None
        rows = int(axis) if axis.isdigit() else SIZES[axis]
        assert y.shape == (rows, irreps.dim), out
        assert torch.isfinite(y).all() and y.abs().max() > 0, out


def test_se3_attention_logits_are_invariant_query_key_products_and_aggregate_sums_weighted_values() -> None:
    mul, nodes, edges = 2, 5, 16
    hidden = o3.Irreps(f"{mul}x0e+{mul}x1o+{mul}x2e")
    attention = fdg.compile(DIAGRAMS / "se3_transformer.fdg", diagram="SE3Attention", mul=mul)
    aggregate = fdg.compile(DIAGRAMS / "se3_transformer.fdg", diagram="SE3Aggregate", mul=mul)
    kernel = tensor_product(hidden, "0e+1o+2e", hidden, "uvw", shared_weights=False, internal_weights=False)
    h, vec = hidden.randn(nodes, -1), torch.randn(edges, 3)
    src, dst = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,))
    RK, RV = torch.randn(edges, kernel.weight_numel), torch.randn(edges, kernel.weight_numel)
    logits = attention(h=h, vec=vec, RK=RK, src=src, dst=dst)

    q = linear(hidden, hidden, weights(attention)["q_weight"])(h)[dst]
    k = kernel(h[src], sh(vec, 2), RK)
    # the dot product over every degree and channel; e3nn's normalization weights degree l by 1/sqrt(3 mul (2l + 1))
    degrees = zip(hidden.slices(), hidden, strict=True)
    products = [(q[:, s] * k[:, s]).sum(1) / math.sqrt(3 * mul * ir.dim) for s, (_, ir) in degrees]
    torch.testing.assert_close(logits[:, 0], sum(products), atol=1e-10, rtol=1e-10)

    g = -rand_matrix(generator=torch.Generator().manual_seed(3), dtype=torch.float64)  # a rotation and the inversion
    turned = attention(h=h @ hidden.D_from_matrix(g).T, vec=vec @ g.T, RK=RK, src=src, dst=dst)
    torch.testing.assert_close(turned, logits, atol=1e-10, rtol=1e-10)

    # PyTorch's part: the softmax over the edges into each node
    e = logits[:, 0].exp()
    alpha = (e / scatter(e[:, None], dst, nodes)[dst, 0])[:, None]
    w = weights(aggregate)
    values = kernel(h[src], sh(vec, 2), RV)
    expected = linear(hidden, hidden, w["mix_att_weight"])(scatter(alpha * values, dst, nodes))
    expected = expected + linear(hidden, hidden, w["mix_self_weight"])(h)
    got = aggregate(h=h, vec=vec, RV=RV, alpha=alpha, src=src, dst=dst)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def test_painn_message_and_update_follow_the_paper() -> None:
    """Equations 7-11 of the PaiNN paper in plain torch, vectors as [atom, channel, xyz]; features stay at l <= 1."""
    F, nodes, edges = 4, 6, 20
    message = fdg.compile(DIAGRAMS / "painn.fdg", diagram="PaiNNMessage", mul=F)
    update = fdg.compile(DIAGRAMS / "painn.fdg", diagram="PaiNNUpdate", mul=F)
    for module in (message, update):
        for description in [*module.inputs.values(), *module.outputs.values()]:
            irreps = feature_irreps(description)
            assert irreps is None or irreps.lmax <= 1, description

    s, v, vec = torch.randn(nodes, F), torch.randn(nodes, 3 * F), torch.randn(edges, 3)
    fs, fvv, fvs = torch.randn(edges, F), torch.randn(edges, F), torch.randn(edges, F)
    src, dst = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,))
    s_out, v_out = message(s=s, fs=fs, v=v, fvv=fvv, fvs=fvs, vec=vec, src=src, dst=dst)
    mu = v.reshape(nodes, F, 3)
    direction = vec / vec.norm(dim=1, keepdim=True)
    dmu = mu[src] * fvv[:, :, None] + math.sqrt(3) * fvs[:, :, None] * direction[:, None, :]  # sh(vec, 1) = sqrt(3) r
    torch.testing.assert_close(s_out, s + scatter(fs, dst, nodes), atol=1e-10, rtol=1e-10)
    expected = mu + scatter(dmu.reshape(edges, 3 * F), dst, nodes).reshape(nodes, F, 3)
    torch.testing.assert_close(v_out.reshape(nodes, F, 3), expected, atol=1e-10, rtol=1e-10)

    u, norm2, scalar = update(v)
    w = weights(update)
    Uv, Vv = (torch.einsum("nui,uw->nwi", mu, w[k].reshape(F, F)) / math.sqrt(F) for k in ("Uv_weight", "Vv_weight"))
    torch.testing.assert_close(u.reshape(nodes, F, 3), Uv, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(norm2, (Vv * Vv).sum(-1) / math.sqrt(3), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(scalar, (Uv * Vv).sum(-1) / math.sqrt(3), atol=1e-10, rtol=1e-10)


def fully_connected(
    a: str | o3.Irreps, b: str | o3.Irreps, out: str | o3.Irreps, weight: torch.Tensor
) -> o3.FullyConnectedTensorProduct:
    """SEGNN's steerable linear map (O3TensorProduct without its bias), holding fdg's weights."""
    tp = o3.FullyConnectedTensorProduct(o3.Irreps(a), o3.Irreps(b), o3.Irreps(out))
    tp.weight.data.copy_(weight)
    return tp


def test_segnn_maps_are_fully_connected_products_with_the_attributes() -> None:
    mul, nodes, edges = 2, 6, 18
    hidden, attr, pre = "2x0e+2x1o+2x2e", "0e+1o+2e", "6x0e+2x1o+2x2e"  # pre: scalars, gates, gated
    diagram = {name: fdg.compile(DIAGRAMS / "segnn.fdg", diagram=name, mul=mul) for _, name in CASES if "SEGNN" in name}
    w = {name: weights(module) for name, module in diagram.items()}
    h, vec, m, u = (
        o3.Irreps(hidden).randn(nodes, -1),
        torch.randn(edges, 3),
        torch.randn(edges, 18),
        torch.randn(nodes, 18),
    )
    src, dst, a_node = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,)), torch.randn(nodes, 9)
    a = sh(vec, 2)

    d2 = (vec * vec).sum(1, keepdim=True) / math.sqrt(3)
    expected = fully_connected(hidden, attr, pre, w["SEGNNMessage1"]["mi_weight"])(h[dst], a)
    expected = expected + fully_connected(hidden, attr, pre, w["SEGNNMessage1"]["mj_weight"])(h[src], a)
    expected = expected + fully_connected("0e", attr, pre, w["SEGNNMessage1"]["md_weight"])(d2, a)
    got = diagram["SEGNNMessage1"](h=h, vec=vec, src=src, dst=dst)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)

    expected = fully_connected(hidden, attr, pre, w["SEGNNMessage2"]["out_weight"])(m, a)
    torch.testing.assert_close(diagram["SEGNNMessage2"](m=m, vec=vec), expected, atol=1e-10, rtol=1e-10)

    expected = fully_connected(hidden, attr, pre, w["SEGNNUpdate1"]["uh_weight"])(h, a_node)
    expected = expected + fully_connected(hidden, attr, pre, w["SEGNNUpdate1"]["um_weight"])(
        scatter(m, dst, nodes), a_node
    )
    got = diagram["SEGNNUpdate1"](h=h, m=m, a=a_node, dst=dst)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)

    expected = h + fully_connected(hidden, attr, hidden, w["SEGNNUpdate2"]["update_weight"])(u, a_node)
    torch.testing.assert_close(diagram["SEGNNUpdate2"](h=h, u=u, a=a_node), expected, atol=1e-10, rtol=1e-10)


def channel_scaled(w: torch.Tensor, Y: torch.Tensor, lmax: int) -> torch.Tensor:
    """w_u Y_l for every channel u and degree l, in e3nn's layout: mul x (0e + 1o + ...)."""
    blocks = [w[:, :, None] * Y[:, l * l : (l + 1) ** 2][:, None, :] for l in range(lmax + 1)]
    return torch.cat([b.flatten(1) for b in blocks], dim=1)


def test_allegro_layer_is_edge_local_and_matches_e3nn() -> None:
    mul, atoms, edges = 3, 5, 24
    hidden = f"{mul}x0e+{mul}x1o+{mul}x2e"
    module = fdg.compile(DIAGRAMS / "allegro.fdg", mul=mul, atoms=atoms, norm=0.4)
    V, w, vec = o3.Irreps(hidden).randn(edges, -1), torch.randn(edges, mul), torch.randn(edges, 3)
    center = torch.arange(edges) % atoms
    got, scalars = module(V=V, w=w, vec=vec, center=center)
    assert torch.equal(scalars, got[:, :mul])  # the 0e block, for the scalar track

    gamma = scatter(channel_scaled(w, sh(vec, 2), 2), center, atoms) * 0.4
    tp = tensor_product(hidden, hidden, hidden, "uuu")
    tp.weight.data.copy_(weights(module)["V_next_weight"])
    torch.testing.assert_close(got, tp(V, gamma[center]), atol=1e-10, rtol=1e-10)

    # edge-local: a change on one edge reaches only the edges that share its central atom
    w2 = w.clone()
    w2[0] += 1.0
    changed = (module(V=V, w=w2, vec=vec, center=center)[0] - got).abs().amax(1) > 1e-12
    assert torch.equal(changed, center == center[0])


def test_cormorant_layer_matches_e3nn() -> None:
    """Unweighted outer CG products (neighbour aggregate and self product), each mixed by a linear map."""
    mul, nedge, nodes, edges = 2, 2, 5, 14
    module = fdg.compile(DIAGRAMS / "cormorant.fdg", mul=mul, nedge=nedge)
    hidden, products = f"{mul}x0e+{mul}x1o+{mul}x2e", "4x0e+4x1o+4x1e+4x2o+4x2e"  # lmax 2, e3nn's order
    f, vec, e = o3.Irreps(hidden).randn(nodes, -1), torch.randn(edges, 3), torch.randn(edges, nedge)
    src, dst = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,))
    E = channel_scaled(e, sh(vec, 2), 2)
    ag = scatter(
        tensor_product(f"{nedge}x0e+{nedge}x1o+{nedge}x2e", hidden, products, "uvuv", weighted=False)(E, f[src]),
        dst,
        nodes,
    )
    sq = tensor_product(hidden, hidden, products, "uvuv", weighted=False)(f, f)
    w = weights(module)
    expected = linear(products, hidden, w["mix_ag_weight"])(ag) + linear(hidden, hidden, w["mix_f_weight"])(f)
    expected = expected + linear(products, hidden, w["mix_sq_weight"])(sq)
    torch.testing.assert_close(module(f=f, vec=vec, e=e, src=src, dst=dst), expected, atol=1e-10, rtol=1e-10)
