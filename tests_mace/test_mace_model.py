"""``diagrams/mace.fdg`` equals mace-torch 0.3.16's own two-interaction ``MACE`` model, in float64 to 1e-10: the
site energies (less MACE's E0) and the forces, with MACE's weights carried over by ``fdg.interop.mace`` (its
symmetric contractions' over-complete weights projected onto fdg's ``power`` basis).

Run in the MACE environment (``make test-mace``: mace-torch pins e3nn 0.4.4, so it is kept out of ``make test``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 torch.load()s pickled constants

import numpy as np
import pytest
import torch
from e3nn import o3
from mace.modules.blocks import RealAgnosticInteractionBlock, RealAgnosticResidualInteractionBlock
from mace.modules.models import MACE

import fdg
from fdg.interop.mace import mace_state

warnings.filterwarnings("ignore", message="The TorchScript type system")  # raised inside MACE's own modules

DIAGRAM = Path(__file__).parents[1] / "diagrams" / "mace.fdg"
CASES = [  # diagram parameters; MACE is built with the same
    {
        "mul": 3,
        "lmax": 3,
        "nu": 3,
        "species": 2,
        "bessels": 8,
        "r_max": 4.0,
        "p": 5,
        "width": 8,
        "readout": 5,
        "avg": 3.0,
    },
    {
        "mul": 2,
        "lmax": 2,
        "nu": 2,
        "species": 3,
        "bessels": 5,
        "r_max": 3.5,
        "p": 6,
        "width": 6,
        "readout": 4,
        "avg": 5.5,
    },
]


def _mace(
    mul: int, lmax: int, nu: int, species: int, bessels: int, r_max: float, p: int, width: int, readout: int, avg: float
) -> MACE:
    model = MACE(
        r_max=r_max,
        num_bessel=bessels,
        num_polynomial_cutoff=p,
        max_ell=lmax,
        interaction_cls=RealAgnosticResidualInteractionBlock,
        interaction_cls_first=RealAgnosticInteractionBlock,
        num_interactions=2,
        num_elements=species,
        hidden_irreps=o3.Irreps(f"{mul}x0e + {mul}x1o"),
        MLP_irreps=o3.Irreps(f"{readout}x0e"),
        atomic_energies=np.zeros(species),
        avg_num_neighbors=avg,
        atomic_numbers=list(range(1, species + 1)),
        correlation=nu,
        gate=torch.nn.functional.silu,
        radial_MLP=[width] * 3,
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weight in model.parameters():  # every weight non-trivial, none at its initial value
            weight.copy_(torch.randn(weight.shape, generator=generator))
    return model


def _graph(atoms: int, species: int, r_max: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    positions = torch.randn(atoms, 3, generator=generator) * 1.2
    z = torch.arange(atoms) % species
    distance = torch.cdist(positions, positions)
    sender, receiver = ((distance < r_max) & ~torch.eye(atoms, dtype=torch.bool)).nonzero().T
    return positions, z, torch.stack([sender, receiver])


@pytest.mark.parametrize("case", CASES, ids=["lmax3-nu3", "lmax2-nu2"])
def test_site_energies_and_forces_equal_mace(case: dict) -> None:
    model = _mace(**case)
    positions, z, edge_index = _graph(9, case["species"], case["r_max"])
    attrs = torch.nn.functional.one_hot(z, case["species"]).double()
    edges = edge_index.shape[1]
    data = {
        "positions": positions.clone(),
        "node_attrs": attrs,
        "edge_index": edge_index,
        "shifts": torch.zeros(edges, 3),
        "unit_shifts": torch.zeros(edges, 3),
        "cell": torch.zeros(3, 3),
        "batch": torch.zeros(len(z), dtype=torch.long),
        "ptr": torch.tensor([0, len(z)]),
    }
    expected = model(data, compute_force=True)

    ours = fdg.compile(DIAGRAM, diagram="MACE", **case).double()
    missing, unexpected = ours.load_state_dict(mace_state(model), strict=False)
    assert not unexpected and not [key for key in missing if key.endswith("weight")]
    x = positions.clone().requires_grad_(True)
    src, dst = edge_index
    energy = ours(attrs=attrs, z=z, vec=x[dst] - x[src], src=src, dst=dst)[:, 0]
    (gradient,) = torch.autograd.grad(energy.sum(), x)

    torch.testing.assert_close(energy, expected["node_energy"].detach(), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(-gradient, expected["forces"].detach(), atol=1e-10, rtol=1e-10)
    assert energy.abs().max() > 1e-3 and gradient.abs().max() > 1e-3  # not a comparison of zeros


def test_a_different_model_is_refused() -> None:
    model = _mace(**CASES[0])
    model.interactions.append(model.interactions[1])
    with pytest.raises(ValueError, match="3 interactions"):
        mace_state(model)
