"""``diagrams/mace.fdg`` equals mace-torch 0.3.16's own two-interaction ``MACE`` model, in float64 to 1e-10: the
site energies (less MACE's E0) and the forces, with MACE's weights carried over by ``fdg.interop.mace`` (its
symmetric contractions' over-complete weights projected onto fdg's ``power`` basis).

Run in the MACE environment (``make test-mace``: mace-torch pins e3nn 0.4.4, so it is kept out of ``make test``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 torch.load()s pickled constants

import pytest
import torch
from models import build_mace

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


def _graph(atoms: int, species: int, r_max: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    positions = torch.randn(atoms, 3, generator=generator) * 1.2
    z = torch.arange(atoms) % species
    distance = torch.cdist(positions, positions)
    sender, receiver = ((distance < r_max) & ~torch.eye(atoms, dtype=torch.bool)).nonzero().T
    return positions, z, torch.stack([sender, receiver])


def _sizes(case: dict) -> dict:
    names = {
        "lmax": "lmax",
        "nu": "correlation",
        "species": "species",
        "bessels": "bessels",
        "r_max": "r_max",
        "p": "p",
    }
    sizes = {new: case[old] for old, new in names.items()}
    return sizes | {"radial": (case["width"],) * 3, "readout": f"{case['readout']}x0e", "avg": case["avg"]}


@pytest.mark.parametrize("case", CASES, ids=["lmax3-nu3", "lmax2-nu2"])
def test_site_energies_and_forces_equal_mace(case: dict) -> None:
    model = build_mace(hidden=f"{case['mul']}x0e + {case['mul']}x1o", **_sizes(case))
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

    e0 = model.atomic_energies_fn.atomic_energies[z]
    torch.testing.assert_close(energy, expected["node_energy"].detach() - e0, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(-gradient, expected["forces"].detach(), atol=1e-10, rtol=1e-10)
    assert energy.abs().max() > 1e-3 and gradient.abs().max() > 1e-3  # not a comparison of zeros
