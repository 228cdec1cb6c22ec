"""A MACE interatomic potential whose whole network is one compiled fusion diagram.

`diagrams/mace.fdg` (and `diagrams/mace_fusion.fdg`) is mace-torch's two-interaction MACE up to the site
energies: species embedding, Bessel radial basis with its polynomial cutoff, the radial MLPs, both interaction
and product layers and both readouts.  The PyTorch here is what MACE does around its network:

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

import fdg
from fdg.runtime import FdgModule

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


def compile_core(config: ModelConfig) -> FdgModule:
    file, name = VARIANTS[config.variant]
    path = Path(config.diagram_file) if config.diagram_file else DIAGRAMS / file
    params = {"mul": config.mul, "lmax": config.lmax, "nu": config.nu, "species": len(config.elements)}
    sizes = {"bessels": config.radial_basis, "r_max": config.cutoff, "width": config.radial_hidden}
    return fdg.compile(path, diagram=name, readout=config.readout_hidden, avg=config.avg_neighbors, **params, **sizes)


class Potential(nn.Module):
    """Energy of each configuration in a batch; see the module docstring for the pieces."""

    atomic_energies: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.core = compile_core(config)
        self.register_buffer("atomic_energies", torch.tensor(config.atomic_energies))

    def forward(self, positions: Tensor, species: Tensor, molecule: Tensor, configs: int) -> Tensor:
        src, dst = radius_graph(positions, molecule, self.config.cutoff)
        attrs = nn.functional.one_hot(species, len(self.config.elements)).to(positions.dtype)
        site = self.core(attrs=attrs, z=species, vec=positions[dst] - positions[src], src=src, dst=dst)[:, 0]
        site = self.atomic_energies[species] + self.config.force_rms * site
        return torch.zeros(configs, dtype=site.dtype, device=site.device).index_add(0, molecule, site)


def energy_and_forces(model: nn.Module, b: Batch, training: bool) -> tuple[Tensor, Tensor]:
    """Energies and forces -∂E/∂r; with `training`, the forces keep their graph so a force loss trains."""
    positions = b.positions.detach().requires_grad_(True)
    energy = model(positions, b.species, b.molecule, b.size)
    (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=training)
    return energy, -grad


def build(config: ModelConfig) -> Potential:
    if config.variant not in VARIANTS:
        raise SystemExit(f"unknown model {config.variant!r}; choose one of: {', '.join(VARIANTS)}")
    return Potential(config)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
