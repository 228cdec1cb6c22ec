"""A MACE interatomic potential whose whole network is one compiled fusion diagram.

`diagrams/mace.fdg` (and `diagrams/mace_fusion.fdg`) is mace-torch's two-interaction MACE up to the site
energies: species embedding, Bessel radial basis with its polynomial cutoff, the radial MLPs, both interaction
and product layers and both readouts.  Around it, `fdg.interop.potential.Potential` does what MACE does around its
network (the same class runs converted mace-torch models):

* energy = Σ_atoms (E0[element] + force_rms · site energy), E0 a fixed per-element table fitted to the data;
* forces = -∂E/∂positions by autograd.

Both diagram variants share one interface (inputs attrs, z, vec, src, dst; output energy), so this file does not
know which one it runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from fdg.interop import potential
from fdg.interop.potential import batch_dict

from .data import Batch, radius_graph

DIAGRAMS = Path(__file__).resolve().parent.parent / "diagrams"
# model name -> (file in diagrams/, diagram name)
VARIANTS = {"mace": ("mace.fdg", "MACE"), "mace_fusion": ("mace_fusion.fdg", "MACEFusion")}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (stored in checkpoints)."""

    variant: str
    elements: tuple[int, ...]
    atomic_energies: tuple[float, ...]
    force_rms: float
    avg_neighbors: float
    mul: int = 32
    lmax: int = 3
    nu: int = 3
    cutoff: float = 5.0
    radial_basis: int = 8
    radial_hidden: int = 32
    readout_hidden: int = 16
    diagram_file: str = ""  # overrides VARIANTS[variant] (tests use stand-in diagrams)

    def to_dict(self) -> dict:
        return asdict(self)


class Potential(potential.Potential):
    """The diagram of ``config.variant`` with the config's sizes, as an :class:`fdg.interop.potential.Potential`
    (so :class:`fdg.interop.calculator.Calculator` runs it in ASE as it runs converted models)."""

    def __init__(self, config: ModelConfig) -> None:
        file, name = VARIANTS[config.variant]
        path = Path(config.diagram_file) if config.diagram_file else DIAGRAMS / file
        sizes = dict(mul=config.mul, lmax=config.lmax, nu=config.nu, species=len(config.elements))
        sizes |= dict(bessels=config.radial_basis, width=config.radial_hidden, readout=config.readout_hidden)
        params = sizes | dict(r_max=config.cutoff, avg=config.avg_neighbors)
        text = path.read_text(encoding="utf-8")
        super().__init__(
            text, config.elements, config.atomic_energies, config.cutoff, config.force_rms, 0.0, name, params
        )
        self.config = config


def energy_and_forces(model: nn.Module, b: Batch, training: bool) -> tuple[Tensor, Tensor]:
    """Energies and forces -∂E/∂r; with `training`, the forces keep their graph so a force loss trains."""
    potential = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    assert isinstance(potential, Potential)
    edge_index = torch.stack(radius_graph(b.positions, b.molecule, potential.r_max))
    elements = potential.atomic_numbers.numel()
    inputs = batch_dict(b.positions.detach(), b.species, elements, edge_index, b.molecule, b.size)
    out = model(inputs, training=training)
    return out["energy"], out["forces"]


def build(config: ModelConfig) -> Potential:
    if config.variant not in VARIANTS:
        raise SystemExit(f"unknown model {config.variant!r}; choose one of: {', '.join(VARIANTS)}")
    return Potential(config)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
