"""``diagrams/nequip_interaction.fdg`` equals nequip 0.19's own ConvNetLayer, with its own edge embedding
(EdgeLengthNormalizer, BesselEdgeLengthEncoding with PolynomialCutoff, SphericalHarmonicEdgeAttrs), in float64 to
1e-10: node features out, and their derivatives with respect to the positions.

Run in the nequip environment (``make test-nequip``: nequip wants lightning and hydra, so it is kept out of
``make test``; ``tests/test_nequip.py`` checks the same diagram against e3nn 0.6 alone)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from e3nn import o3
from nequip.data import AtomicDataDict as K
from nequip.nn.convnetlayer import ConvNetLayer
from nequip.nn.embedding import (
    BesselEdgeLengthEncoding,
    EdgeLengthNormalizer,
    PolynomialCutoff,
    SphericalHarmonicEdgeAttrs,
)

import fdg
from fdg.interop import nequip

DIAGRAM = Path(__file__).parents[1] / "diagrams" / "nequip_interaction.fdg"
CASES = [
    {"mul": 3, "elements": 2, "bessels": 8, "r_max": 4.0, "p": 6, "width": 7, "avg": 3.5},
    {"mul": 2, "elements": 3, "bessels": 5, "r_max": 3.0, "p": 4, "width": 16, "avg": 11.0},
]


def _nequip(mul: int, elements: int, bessels: int, r_max: float, p: int, width: int, avg: float) -> torch.nn.Module:
    types = [f"t{i}" for i in range(elements)]
    features = f"{mul}x0e + {mul}x1o + {mul}x2e"
    irreps = {K.POSITIONS_KEY: o3.Irreps("1o"), K.EDGE_INDEX_KEY: None}
    stages = []
    for make in (
        lambda i: EdgeLengthNormalizer(r_max=r_max, type_names=types, irreps_in=i),
        lambda i: BesselEdgeLengthEncoding(cutoff=PolynomialCutoff(p), num_bessels=bessels, irreps_in=i),
        lambda i: SphericalHarmonicEdgeAttrs(2, irreps_in=i),
        lambda i: ConvNetLayer(
            i | {K.NODE_FEATURES_KEY: o3.Irreps(features), K.NODE_ATTRS_KEY: o3.Irreps(f"{elements}x0e")},
            features,
            convolution_kwargs={"avg_num_neighbors": avg, "radial_mlp_depth": 1, "radial_mlp_width": width},
        ),
    ):
        stages.append(make(irreps))
        irreps = dict(stages[-1].irreps_out)
    layers = torch.nn.Sequential(*stages)
    with torch.no_grad():
        for parameter in layers.parameters():
            parameter.normal_()
    return layers


@pytest.mark.parametrize("sizes", CASES)
def test_diagram_equals_nequips_convnet_layer(sizes: dict[str, float]) -> None:
    torch.set_default_dtype(torch.float64)
    reference = _nequip(**sizes)  # type: ignore[arg-type]
    module = fdg.compile(DIAGRAM, **sizes).double()
    module.load_state_dict(nequip.convnet_layer_state(reference.state_dict(), prefix="3."), strict=False)

    g = torch.Generator().manual_seed(0)
    nodes, edges, mul, elements = 9, 40, int(sizes["mul"]), int(sizes["elements"])
    pos = (torch.randn(nodes, 3, generator=g) * 1.5).requires_grad_()
    index = torch.randint(0, nodes, (2, edges), generator=g)
    index = index[:, index[0] != index[1]]
    h = torch.randn(nodes, 9 * mul, generator=g)
    attrs = torch.nn.functional.one_hot(torch.randint(0, elements, (nodes,), generator=g), elements).double()

    data = {K.POSITIONS_KEY: pos, K.EDGE_INDEX_KEY: index, K.NODE_FEATURES_KEY: h, K.NODE_ATTRS_KEY: attrs}
    want = reference(data)[K.NODE_FEATURES_KEY]
    dst, src = index  # nequip: edge_dst = edge_index[0], edge_src = edge_index[1], vectors pos[src] - pos[dst]
    got = module(h, attrs, pos[src] - pos[dst], src, dst)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)

    probe = torch.randn(got.shape, generator=g)
    (force,) = torch.autograd.grad((got * probe).sum(), pos, retain_graph=True)
    (reference_force,) = torch.autograd.grad((want * probe).sum(), pos)
    torch.testing.assert_close(force, reference_force, atol=1e-10, rtol=1e-10)
