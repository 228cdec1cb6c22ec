"""mace-torch models with every weight non-trivial, and mace's own batches of ASE configurations."""

from __future__ import annotations

import os

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 torch.load()s pickled constants

import ase
import numpy as np
import torch
from e3nn import o3
from mace import data, tools
from mace.modules.blocks import RealAgnosticInteractionBlock, RealAgnosticResidualInteractionBlock
from mace.modules.models import MACE, ScaleShiftMACE
from mace.tools.torch_geometric.dataloader import DataLoader


def build_mace(
    hidden: str = "3x0e + 3x1o",
    lmax: int = 3,
    correlation: int | list[int] = 3,
    species: int = 2,
    interactions: int = 2,
    bessels: int = 8,
    r_max: float = 4.0,
    p: int = 5,
    radial: tuple[int, ...] = (8, 8, 8),
    readout: str = "5x0e",
    avg: float = 3.0,
    residual_first: bool = False,
    scale_shift: tuple[float, float] | None = None,
    gate=torch.nn.functional.silu,
    randomize: bool = True,
    **options: object,
) -> MACE:
    """A ``MACE`` (``ScaleShiftMACE`` with ``scale_shift``) of these sizes, its weights drawn from a seeded normal
    (``randomize``) or left at mace's initialisation."""
    kwargs = (
        dict(
            r_max=r_max,
            num_bessel=bessels,
            num_polynomial_cutoff=p,
            max_ell=lmax,
            interaction_cls=RealAgnosticResidualInteractionBlock,
            interaction_cls_first=RealAgnosticResidualInteractionBlock
            if residual_first
            else RealAgnosticInteractionBlock,
            num_interactions=interactions,
            num_elements=species,
            hidden_irreps=o3.Irreps(hidden),
            MLP_irreps=o3.Irreps(readout),
            atomic_energies=np.linspace(-2.0, 1.0, species),
            avg_num_neighbors=avg,
            atomic_numbers=list(range(1, species + 1)),
            correlation=correlation,
            gate=gate,
            radial_MLP=list(radial),
        )
        | options
    )
    if scale_shift is None:
        model = MACE(**kwargs)
    else:
        model = ScaleShiftMACE(atomic_inter_scale=scale_shift[0], atomic_inter_shift=scale_shift[1], **kwargs)
    if not randomize:
        return model
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weight in model.parameters():  # every weight non-trivial, none at its initial value
            weight.copy_(torch.randn(weight.shape, generator=generator))
    return model


def configurations(species: int, periodic: bool, count: int = 2, atoms: int = 8, seed: int = 0) -> list[ase.Atoms]:
    """Random clusters, or random periodic cells (a sheared box about as wide as the cutoff, so edges wrap)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        if periodic:
            cell = 3.2 * np.eye(3) + rng.normal(scale=0.3, size=(3, 3))
            positions = rng.uniform(size=(atoms, 3)) @ cell
            out.append(
                ase.Atoms(numbers=1 + rng.integers(species, size=atoms), positions=positions, cell=cell, pbc=True)
            )
        else:
            positions = rng.normal(scale=1.2, size=(atoms, 3))
            out.append(ase.Atoms(numbers=1 + rng.integers(species, size=atoms), positions=positions))
    return out


def batch(structures: list[ase.Atoms], species: int, r_max: float) -> dict[str, torch.Tensor]:
    """mace's own batch of ``structures``: ``AtomicData.from_config`` and its DataLoader, then ``to_dict()``."""
    table = tools.AtomicNumberTable(list(range(1, species + 1)))
    dataset = [
        data.AtomicData.from_config(data.config_from_atoms(atoms), z_table=table, cutoff=r_max) for atoms in structures
    ]
    (loaded,) = DataLoader(dataset, batch_size=len(dataset), shuffle=False)
    return loaded.to_dict()
