"""``diagrams/nequip_interaction.fdg`` is nequip 0.19's ConvNetLayer exactly.  The reference is that layer built the
way nequip builds it, from e3nn 0.6 modules (nequip's own classes are checked in ``tests_nequip/``, ``make
test-nequip``). Weights come over by ``fdg.interop.nequip.convnet_layer_state``, and the layer is compared in
float64 to 1e-10: outputs and forces, under rotations and inversion, and twice differentiated."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from e3nn import nn as e3nn_nn
from e3nn import o3

import fdg
from fdg.interop import nequip
from fdg.runtime import Irreps, rand_matrix

pytestmark = pytest.mark.usefixtures("float64_default")  # e3nn builds its CG tensors in the default dtype

DIAGRAM = Path(__file__).parents[1] / "diagrams" / "nequip_interaction.fdg"
SIZES = {"mul": 3, "elements": 2, "bessels": 5, "r_max": 4.0, "p": 6, "width": 7, "avg": 3.5}


class ConvNetLayer(torch.nn.Module):
    """nequip's ConvNetLayer(InteractionBlock) on features mul x (0e + 1o + 2e), written out from e3nn 0.6 as
    ``nequip/nn/convnetlayer.py`` and ``interaction_block.py`` build it; its ``state_dict`` keys are nequip's."""

    def __init__(self, mul: int, elements: int, bessels: int, r_max: float, p: int, width: int, avg: float) -> None:
        super().__init__()
        self.r_max, self.p, self.avg, self.bessels, self.width = r_max, p, avg, bessels, width
        features, harmonics = o3.Irreps(f"{mul}x0e + {mul}x1o + {mul}x2e"), o3.Irreps.spherical_harmonics(2)
        silu = torch.nn.functional.silu
        gate = e3nn_nn.Gate(f"{mul}x0e", [silu], f"{2 * mul}x0e", [silu], f"{mul}x1o + {mul}x2e")
        out = gate.irreps_in.simplify()  # ConvNetLayer's conv_irreps_out: 3 mul x 0e + mul x 1o + mul x 2e
        mid, instructions = [], []
        for i, (m, ir_in) in enumerate(features):
            for j, (_, ir_edge) in enumerate(harmonics):
                for ir_out in ir_in * ir_edge:
                    if ir_out in out:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((m, ir_out))
        irreps_mid, order, _ = o3.Irreps(mid).sort()
        instructions = [(i, j, order[k], mode, train) for i, j, k, mode, train in instructions]
        self.conv = torch.nn.Module()
        self.conv.sc = o3.FullyConnectedTensorProduct(features, f"{elements}x0e", out)
        self.conv.linear_1 = o3.Linear(features, features)
        self.conv.tp = o3.TensorProduct(
            features, harmonics, irreps_mid, instructions, shared_weights=False, internal_weights=False
        )
        self.conv.linear_2 = o3.Linear(irreps_mid.simplify(), out)
        self.edge_mlp = torch.nn.ParameterList(  # nequip's ScalarMLPFunction: x @ W * gain / sqrt(fan_in), raw silu
            [torch.randn(bessels, width), torch.randn(width, self.conv.tp.weight_numel)]
        )
        self.equivariant_nonlin = gate
        for parameter in self.parameters():
            torch.nn.init.normal_(parameter)

    def state_dict_as_nequip(self) -> dict[str, torch.Tensor]:
        own = {k: v for k, v in self.state_dict().items() if k.startswith("conv.") and k.endswith(".weight")}
        return own | {f"conv.edge_mlp.mlp.{2 * i}.weight": w.detach() for i, w in enumerate(self.edge_mlp)}

    def forward(
        self, h: torch.Tensor, attrs: torch.Tensor, vec: torch.Tensor, src: torch.Tensor, dst: torch.Tensor
    ) -> torch.Tensor:
        x = vec.norm(dim=1, keepdim=True) / self.r_max
        roots = torch.arange(1, self.bessels + 1, dtype=vec.dtype)
        p = self.p
        envelope = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        embedding = torch.sinc(x * roots) * roots * envelope * (x < 1)
        first, last = self.edge_mlp
        hidden = torch.nn.functional.silu(embedding @ first / math.sqrt(self.bessels))
        R = hidden @ last * math.sqrt(2) / math.sqrt(self.width)
        sc = self.conv.sc(h, attrs)
        y = self.conv.linear_1(h) / math.sqrt(self.avg)
        harmonics = o3.spherical_harmonics([0, 1, 2], vec, normalize=True, normalization="component")
        messages = self.conv.tp(y[src], harmonics, R)
        agg = messages.new_zeros(len(h), messages.shape[1]).index_add(0, dst, messages)
        out: torch.Tensor = self.equivariant_nonlin(self.conv.linear_2(agg) + sc)
        return out


def _pair(**sizes: float) -> tuple[torch.nn.Module, ConvNetLayer]:
    sizes = SIZES | sizes
    reference = ConvNetLayer(**sizes)  # type: ignore[arg-type]
    module = fdg.compile(DIAGRAM, **sizes).double()
    module.load_state_dict(nequip.convnet_layer_state(reference.state_dict_as_nequip()), strict=False)
    return module, reference


def _inputs(mul: int, elements: int, nodes: int = 7, edges: int = 30, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    species = torch.randint(0, elements, (nodes,), generator=g)
    return {
        "h": torch.randn(nodes, 9 * mul, generator=g),
        "attrs": torch.nn.functional.one_hot(species, elements).double(),
        "vec": torch.randn(edges, 3, generator=g) * 2.0,  # some beyond r_max
        "src": torch.randint(0, nodes, (edges,), generator=g),
        "dst": torch.randint(0, nodes, (edges,), generator=g),
    }


def test_weights_carry_over_one_to_one() -> None:
    module, reference = _pair()
    own = {k for k, v in module.state_dict().items() if k.endswith("_weight")}
    assert own == set(nequip.convnet_layer_state(reference.state_dict_as_nequip()))
    assert sum(p.numel() for p in module.parameters()) == sum(p.numel() for p in reference.parameters())


def test_outputs_and_forces_equal_the_nequip_layer() -> None:
    module, reference = _pair()
    x = _inputs(SIZES["mul"], SIZES["elements"])
    vec = x["vec"].clone().requires_grad_()
    reference_vec = x["vec"].clone().requires_grad_()
    got = module(**(x | {"vec": vec}))
    want = reference(**(x | {"vec": reference_vec}))
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    probe = torch.randn(got.shape, generator=torch.Generator().manual_seed(1))
    (force,) = torch.autograd.grad((got * probe).sum(), vec)
    (reference_force,) = torch.autograd.grad((want * probe).sum(), reference_vec)
    torch.testing.assert_close(force, reference_force, atol=1e-10, rtol=1e-10)


def test_nequip_layer_is_equivariant_under_rotations_and_inversion() -> None:
    module, _ = _pair()
    mul = SIZES["mul"]
    x = _inputs(mul, SIZES["elements"])
    irreps = Irreps(f"{mul}x0e + {mul}x1o + {mul}x2e")
    rotation = rand_matrix(generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for matrix in (rotation, -torch.eye(3, dtype=torch.float64), -rotation):
        D = irreps.D_from_matrix(matrix)
        turned = x | {"h": x["h"] @ D.T, "vec": x["vec"] @ matrix.T}
        torch.testing.assert_close(module(**turned), module(**x) @ D.T, atol=1e-10, rtol=1e-10)


def test_nequip_layer_second_derivatives() -> None:
    module, _ = _pair(mul=1, bessels=3, width=2)
    x = _inputs(1, SIZES["elements"], nodes=3, edges=4)
    leaves = (x["h"].clone().requires_grad_(), x["vec"].clone().requires_grad_())

    def f(h: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        return module(h, x["attrs"], vec, x["src"], x["dst"])

    assert torch.autograd.gradgradcheck(f, leaves)


def test_an_edge_mlp_of_another_depth_is_refused_by_name() -> None:
    _, reference = _pair()
    state = reference.state_dict_as_nequip() | {"conv.edge_mlp.mlp.4.weight": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match="radial_mlp_depth = 2"):
        nequip.convnet_layer_state(state)
