"""mace-torch 0.3.16's weights in ``diagrams/mace.fdg``.

A two-interaction ``mace.modules.MACE`` (hidden irreps ``mul x (0e + 1o)``, RealAgnosticInteractionBlock then
RealAgnosticResidualInteractionBlock, NonLinearReadoutBlock last) keeps these weights, each one a weight of the
diagram:

=================================================  ===========================  ====================================
mace-torch (``state_dict`` key)                    diagram                      mapping
=================================================  ===========================  ====================================
``node_embedding.linear.weight``                   ``h0_weight``                unchanged (e3nn's Linear layout)
``interactions.I.linear_up.weight``                ``up1_weight``, ``up2_..``   unchanged
``interactions.I.conv_tp_weights.layerK.weight``   ``R1_1_weight`` … ``R1_..``  unchanged: FullyConnectedNet's
                                                                                ``(in, out)``, ``1 / sqrt(in)``;
                                                                                the last one's columns in the
                                                                                diagram's path order
``interactions.I.linear.weight``                   ``A1_1_weight``, ``A2_1_..``  unchanged (over ``irreps_mid``)
``interactions.0.skip_tp.weight``                  ``A1_weight``                unchanged (FullyConnectedTP)
``interactions.1.skip_tp.weight``                  ``sc2_weight``               unchanged
``products.I.symmetric_contractions``              ``B1_weight``, ``B2_..``     projected onto fdg's basis (below)
``products.I.linear.weight``                       ``h1_weight``, ``h2_1_..``   unchanged
``readouts.0.linear.weight``                       ``energy_1_weight``          unchanged
``readouts.1.linear_1.weight``, ``linear_2``       ``energy_2_..``, ``_4_..``   unchanged
=================================================  ===========================  ====================================

MACE's symmetric contraction spans the same polynomials as fdg's ``power`` on an over-complete basis, so its
weights have no one-to-one image.  Each channel of each species is a polynomial of that channel alone, and the
outputs are linear in the weights; so with ``Phi`` the outputs of fdg's basis (one channel, every basis element)
on random inputs and ``Y`` those of MACE's contraction with its weights on the same inputs (one column per
channel), fdg's weights are the exact solution of ``Phi X = Y``.  The residual is checked: a MACE whose space
differs is refused, never approximated.  So this function needs the model itself, not only its state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any  # mace-torch's modules, read by their attributes (fdg does not import mace)

import torch

import fdg

_LAYERS = (  # (interaction index, radial MLP name, names of linear_up, linear, skip_tp, product linear)
    (0, "R1", "up1_weight", "A1_1_weight", "A1_weight", "h1_weight"),
    (1, "R2", "up2_weight", "A2_1_weight", "sc2_weight", "h2_1_weight"),
)
_READOUTS = {
    "readouts.0.linear.weight": "energy_1_weight",
    "readouts.1.linear_1.weight": "energy_2_weight",
    "readouts.1.linear_2.weight": "energy_4_weight",
}


def mace_state(model: Any) -> dict[str, torch.Tensor]:
    """The compiled ``MACE`` diagram's weights from a mace-torch ``MACE`` model (compile the diagram with the
    model's sizes: ``mul``, ``lmax``, ``nu``, ``species``, ``bessels``, ``r_max``, ``p``, ``width``, ``readout``,
    ``avg``).  Load them with ``load_state_dict(..., strict=False)``.  Raises ``ValueError`` naming what the
    diagram does not express."""
    state = model.state_dict()
    if len(model.interactions) != 2:
        raise ValueError(f"the model has {len(model.interactions)} interactions: diagrams/mace.fdg has 2")
    for key, value in state.items():
        if key.endswith(".bias") and value.numel():
            raise ValueError(f"{key} is not empty: the diagram's linears have no bias (MACE's default)")
    out = {"h0_weight": state["node_embedding.linear.weight"]}
    for index, radial, up, linear, skip, product in _LAYERS:
        prefix = f"interactions.{index}."
        mlp = sorted(
            (int(key[len(prefix + "conv_tp_weights.layer") : -len(".weight")]), value)
            for key, value in state.items()
            if key.startswith(prefix + "conv_tp_weights.layer")
        )
        if len(mlp) != 4:
            raise ValueError(f"{prefix}conv_tp_weights has {len(mlp)} layers: the diagram's radial MLPs have 4")
        for (_, weight), suffix in zip(mlp, ("_1", "_3", "_5", ""), strict=True):
            out[f"{radial}{suffix}_weight"] = weight
        out[f"{radial}_weight"] = out[f"{radial}_weight"][:, _path_order(model.interactions[index].conv_tp)]
        out[up] = state[prefix + "linear_up.weight"]
        out[linear] = state[prefix + "linear.weight"]
        out[skip] = state[prefix + "skip_tp.weight"]
        out[product] = state[f"products.{index}.linear.weight"]
        out[f"B{index + 1}_weight"] = _project(model.products[index].symmetric_contractions)
    out |= {new: state[old] for old, new in _READOUTS.items()}
    return {key: value.detach().reshape(-1) if key[0] != "B" else value for key, value in out.items()}


def _path_order(tp: Any) -> torch.Tensor:
    """The columns of MACE's radial weights in the diagram's order.  MACE sorts its convolution's instructions by
    output block (``tp_out_irreps_with_instructions``), so its per-edge weights come in that order; the diagram's
    paths, ``blocks = paths``, keep e3nn's: by input irrep, edge irrep, then output degree."""
    paths = [(i.i_in1, i.i_in2, tp.irreps_out[i.i_out].ir.l) for i in tp.instructions]
    sizes = [tp.irreps_in1[i.i_in1].mul * tp.irreps_in2[i.i_in2].mul for i in tp.instructions]
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    order = sorted(range(len(paths)), key=paths.__getitem__)
    return torch.cat([torch.arange(starts[k], starts[k] + sizes[k]) for k in order])


def _project(contraction: Any) -> torch.Tensor:
    """fdg's ``[species, K * mul]`` power weights that give what MACE's ``contraction`` gives."""
    contraction = copy.deepcopy(contraction).double()
    irreps_in, irreps_out = contraction.irreps_in, contraction.irreps_out
    mul = irreps_in[0].mul
    nu = max(c.correlation for c in contraction.contractions)
    species = contraction.contractions[0].weights_max.shape[0]
    basis, k = _basis(" + ".join(str(ir) for _, ir in irreps_in), nu, " + ".join(str(ir) for _, ir in irreps_out))
    dim_in, dim_out = irreps_in.dim // mul, irreps_out.dim // mul
    generator = torch.Generator().manual_seed(0)
    rows = -(-3 * k // dim_out) + 8  # three equations per unknown, at least
    x = torch.randn(rows, dim_in, generator=generator, dtype=torch.float64)
    phi = basis(x)  # [rows * dim_out, K]
    weights = []
    for s in range(species):
        attrs = torch.nn.functional.one_hot(torch.full((rows,), s), species).to(torch.float64)
        with torch.no_grad():
            y = contraction(x[:, None, :].expand(rows, mul, dim_in).contiguous(), attrs)
        blocks = y.split([mul * ir.dim for _, ir in irreps_out], dim=1)
        y = torch.cat([b.reshape(rows, mul, -1) for b in blocks], dim=2)  # [rows, mul, dim_out]
        target = y.permute(0, 2, 1).reshape(rows * dim_out, mul)
        solution = torch.linalg.lstsq(phi, target, driver="gelsd").solution  # [K, mul]
        residual = (phi @ solution - target).abs().max().item()
        if residual > 1e-9 * max(1.0, target.abs().max().item()):
            raise ValueError(
                f"MACE's symmetric contraction {irreps_in} -> {irreps_out} (correlation {nu}) is not in the span of "
                f"fdg's power (residual {residual:.1e}): the diagram cannot express this product basis"
            )
        weights.append(solution.reshape(-1))
    return torch.stack(weights)


def _basis(irreps_in: str, nu: int, irreps_out: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """fdg's power basis for one channel: ``x [rows, dim_in] -> [rows * dim_out, K]`` (d outputs / d weights)."""
    module = fdg.compile(
        f"diagram P() {{\n input A : {irreps_in}\n output B = power(A, {nu}) -> {irreps_out}\n}}"
    ).double()
    ((name, weight),) = module.named_parameters()

    def outputs(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, {name: w}, (x,)).reshape(-1)

    def basis(x: torch.Tensor) -> torch.Tensor:
        return torch.func.jacrev(outputs)(weight.detach(), x)

    return basis, weight.numel()
