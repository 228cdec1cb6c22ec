"""A MACE-style interatomic potential whose equivariant part is one compiled fusion diagram.

`diagrams/mace.fdg` (and `diagrams/mace_fusion.fdg`) hold both interaction layers: A-basis, B-basis
(`power`) and the updates.  Everything around them is plain PyTorch, as in MACE:

* species embedding: one learned vector of scalars per element (`h0`);
* radial basis: 8 Bessel functions times a polynomial cutoff envelope, fed to one MLP per layer whose
  output is the diagram's per-edge weights input (`R1`, `R2`, sized by `module.weight_numel`);
* readouts: a linear map of layer 1's scalars and a one-hidden-layer MLP of layer 2's scalars;
* energy = Σ_atoms (E0[element] + force_rms · (readout1 + readout2)), forces = -∂E/∂positions by autograd.

Both diagram variants share one interface (inputs h0, z, vec, R1, R2, src, dst; outputs h1, h2), so this
file does not know which one it runs.
"""

from __future__ import annotations

import itertools
import math
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


class RadialBasis(nn.Module):
    """Bessel functions sqrt(2/c) sin(nπr/c)/r, n = 1..count, times the polynomial envelope of order 5.

    The envelope 1 - 21x^5 + 35x^6 - 15x^7 (x = r/c) and its first two derivatives vanish at the cutoff,
    so energies, forces and force gradients are continuous as atoms cross it.
    """

    frequencies: Tensor

    def __init__(self, cutoff: float, count: int) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, count + 1) * math.pi / cutoff)

    def forward(self, r: Tensor) -> Tensor:
        x = r / self.cutoff
        envelope = 1 - 21 * x**5 + 35 * x**6 - 15 * x**7
        bessel = math.sqrt(2 / self.cutoff) * torch.sin(self.frequencies * r[:, None]) / r[:, None]
        return bessel * (envelope * (x < 1))[:, None]


class Scalar(nn.Module):
    """A linear map to one number per row, without bias: ``x @ weight``.

    Not ``nn.Linear(n, 1)``: that weight, ``[1, n]``, gets a gradient whose strides differ from its own, which
    DistributedDataParallel reports (and copies) at every step.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n) / math.sqrt(n))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers without bias and SiLU between them (MACE's radial MLP and readout)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.SiLU())
        layers.append(Scalar(n_in) if n_out == 1 else nn.Linear(n_in, n_out, bias=False))
    return nn.Sequential(*layers)


def compile_core(config: ModelConfig) -> FdgModule:
    file, name = VARIANTS[config.variant]
    path = Path(config.diagram_file) if config.diagram_file else DIAGRAMS / file
    params = {"mul": config.mul, "lmax": config.lmax, "nu": config.nu, "species": len(config.elements)}
    return fdg.compile(path, diagram=name, norm=1 / config.avg_neighbors, **params)


class Potential(nn.Module):
    """Energy of each configuration in a batch; see the module docstring for the pieces."""

    atomic_energies: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.core = compile_core(config)
        self.embedding = nn.Embedding(len(config.elements), config.mul)
        self.basis = RadialBasis(config.cutoff, config.radial_basis)
        hidden = [config.radial_hidden] * 3
        self.radial = nn.ModuleDict(
            {name: mlp([config.radial_basis, *hidden, numel]) for name, numel in self.core.weight_numel.items()}
        )
        self.readout1 = Scalar(config.mul)
        self.readout2 = mlp([config.mul, config.readout_hidden, 1])
        self.register_buffer("atomic_energies", torch.tensor(config.atomic_energies))

    def forward(self, positions: Tensor, species: Tensor, molecule: Tensor, configs: int) -> Tensor:
        src, dst = radius_graph(positions, molecule, self.config.cutoff)
        vec = positions[src] - positions[dst]
        basis = self.basis(vec.norm(dim=1))
        weights = {name: net(basis) for name, net in self.radial.items()}
        h1, h2 = self.core(h0=self.embedding(species), z=species, vec=vec, src=src, dst=dst, **weights)
        mul = self.config.mul
        site = self.readout1(h1[:, :mul]) + self.readout2(h2[:, :mul])  # mul_ir layout: the scalars come first
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
