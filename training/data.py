"""Datasets of one molecule's configurations: loading, seeded splits, batches, neighbour graphs, statistics.

Every configuration of a file holds the same atoms in the same order (one molecule sampled by dynamics),
so a batch is a plain stack of configurations; the graph joins atoms of the same configuration closer
than the cutoff.  Units: Å, eV, eV/Å.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Molecules:
    """All configurations of one molecule; `species` indexes `elements` (atomic numbers, sorted)."""

    positions: Tensor  # [configs, atoms, 3]
    species: Tensor  # [atoms], int64 in 0..len(elements)-1
    elements: tuple[int, ...]
    energy: Tensor  # [configs]
    forces: Tensor  # [configs, atoms, 3]

    def __len__(self) -> int:
        return self.positions.shape[0]


def load(path: str | Path, dtype: torch.dtype = torch.float64) -> Molecules:
    """Read a dataset written by `training.md` (or any .npz with the same four arrays)."""
    with np.load(path) as f:
        numbers = f["numbers"]
        elements = tuple(int(e) for e in np.unique(numbers))
        return Molecules(
            positions=torch.tensor(f["positions"], dtype=dtype),
            species=torch.tensor(np.searchsorted(elements, numbers), dtype=torch.long),
            elements=elements,
            energy=torch.tensor(f["energy"], dtype=dtype),
            forces=torch.tensor(f["forces"], dtype=dtype),
        )


class Split(NamedTuple):
    train: Tensor
    val: Tensor
    test: Tensor


def split(n: int, n_train: int, n_val: int, seed: int) -> Split:
    """A seeded random partition of range(n): `n_train` for training, `n_val` for validation, the rest held out."""
    if n_train + n_val >= n:
        raise SystemExit(f"the dataset has {n} configurations: too few for {n_train} train + {n_val} validation + test")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return Split(order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])


class Batch(NamedTuple):
    """Configurations stacked atom by atom: atom k of configuration b is row b * atoms + k."""

    positions: Tensor  # [configs * atoms, 3]
    species: Tensor  # [configs * atoms]
    molecule: Tensor  # [configs * atoms]: which configuration each atom belongs to
    energy: Tensor  # [configs]
    forces: Tensor  # [configs * atoms, 3]

    @property
    def size(self) -> int:
        return self.energy.shape[0]


def batch(data: Molecules, index: Tensor) -> Batch:
    configs, atoms = index.numel(), data.species.numel()
    return Batch(
        positions=data.positions[index].reshape(-1, 3),
        species=data.species.repeat(configs),
        molecule=torch.arange(configs).repeat_interleave(atoms),
        energy=data.energy[index],
        forces=data.forces[index].reshape(-1, 3),
    )


def radius_graph(positions: Tensor, molecule: Tensor, cutoff: float) -> tuple[Tensor, Tensor]:
    """Directed edges (src, dst) between distinct atoms of one configuration closer than `cutoff`.

    Which pairs are edges is decided without gradient; the model recomputes the edge vectors from
    `positions`, so energies stay differentiable (the cutoff envelope makes them smooth at the boundary).
    """
    with torch.no_grad():
        close = torch.cdist(positions, positions) < cutoff
        close &= molecule[:, None] == molecule[None, :]
        close.fill_diagonal_(False)
        dst, src = close.nonzero(as_tuple=True)
    return src, dst


@dataclass(frozen=True)
class Statistics:
    """What the model's output scaling is fitted to, from the training configurations only."""

    atomic_energies: tuple[float, ...]  # per element, eV: least-squares fit of energy to composition
    force_rms: float  # eV/Å
    avg_neighbors: float


def statistics(data: Molecules, train: Tensor, cutoff: float) -> Statistics:
    """Per-element reference energies (minimum-norm least squares), force RMS and mean neighbour count.

    With one molecule the composition is the same in every configuration, so the fit only fixes the
    sum of the reference energies (to the mean energy); the minimum-norm solution spreads it by count.
    """
    counts = torch.bincount(data.species, minlength=len(data.elements)).to(data.energy.dtype)
    design = counts.expand(train.numel(), -1)
    e0 = torch.linalg.lstsq(design, data.energy[train, None], driver="gelsd").solution[:, 0]
    b = batch(data, train[:256])
    src, _ = radius_graph(b.positions, b.molecule, cutoff)
    return Statistics(
        atomic_energies=tuple(e0.tolist()),
        force_rms=float(data.forces[train].pow(2).mean().sqrt()),
        avg_neighbors=src.numel() / b.positions.shape[0],
    )
