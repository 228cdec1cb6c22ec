"""An interatomic potential around a compiled diagram of site energies, called the way mace-torch's models are.

The diagram (inputs ``attrs``, ``z``, ``vec``, ``src``, ``dst``; output ``energy``, one scalar per atom) is the
equivariant network.  What stays in PyTorch is what MACE does around its network:

* the site energy of atom ``i`` is ``E0[z_i] + scale * energy_i + shift`` (MACE: ``scale = 1``, ``shift = 0``);
* a configuration's energy is the sum of its atoms' site energies;
* forces are ``-dE/dr`` by autograd, and the stress is ``dE/d(strain) / volume``, from a symmetric strain applied
  to the positions and the cell (the edges' periodic shifts follow the cell: ``shift = unit_shift @ cell``); a
  configuration without a cell (a cluster, volume 0) has zero stress, as in mace-torch.

:meth:`Potential.save` writes the diagram's text, its state and its cost report into a folder, and
:func:`load` rebuilds the potential from that folder without the library it was converted from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

import fdg
from fdg.checker.evaluate import ParamValue
from fdg.runtime import FdgModule

TEXT, STATE, REPORT = "model.fdg", "state.pt", "report.txt"


class Potential(nn.Module):
    """Energies, forces and (for periodic cells) stresses of a batch of configurations.

    Call it with mace-torch's batch dictionary (``batch.to_dict()``, or :func:`batch_dict`): ``positions``,
    ``node_attrs`` (one-hot species), ``edge_index`` (``[sender, receiver]``), ``shifts``, ``batch``, ``ptr``, and
    for the stress ``cell`` and ``unit_shifts``.  ``atomic_numbers[s]`` is the element of species ``s``, and
    ``r_max`` the cutoff its neighbour lists need."""

    atomic_numbers: Tensor
    atomic_energies: Tensor
    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        text: str,
        atomic_numbers: Sequence[int],
        atomic_energies: Tensor | Sequence[float],
        r_max: float,
        scale: float = 1.0,
        shift: float = 0.0,
        diagram: str | None = None,
        params: Mapping[str, ParamValue] | None = None,
    ) -> None:
        super().__init__()
        self.text, self.diagram, self.params = text, diagram, dict(params or {})
        self.r_max = float(r_max)
        self.core: FdgModule = fdg.compile(text, diagram, **self.params)
        self.register_buffer("atomic_numbers", torch.tensor(list(atomic_numbers), dtype=torch.long))
        energies = torch.as_tensor(atomic_energies, dtype=torch.get_default_dtype()).detach().clone()
        if energies.shape != self.atomic_numbers.shape:
            raise ValueError(f"{energies.numel()} atomic energies for {self.atomic_numbers.numel()} elements")
        self.register_buffer("atomic_energies", energies)
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def forward(
        self,
        data: dict[str, Tensor],
        training: bool = False,
        compute_force: bool = True,
        compute_stress: bool = False,
    ) -> dict[str, Tensor]:
        positions = data["positions"]
        if (compute_force or compute_stress) and not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
        src, dst = data["edge_index"]
        batch = data["batch"]
        graphs = data["ptr"].numel() - 1
        shifts = data["shifts"]
        inputs = [positions]
        if compute_stress:
            strain = torch.zeros(graphs, 3, 3, dtype=positions.dtype, device=positions.device, requires_grad=True)
            symmetric = 0.5 * (strain + strain.transpose(1, 2))
            cell = data["cell"].view(-1, 3, 3)
            cell = cell + cell @ symmetric
            positions_strained = positions + torch.einsum("ni,nij->nj", positions, symmetric[batch])
            shifts = torch.einsum("ei,eij->ej", data["unit_shifts"], cell[batch[src]])
            inputs.append(strain)
        else:
            positions_strained = positions
        attrs = data["node_attrs"].to(positions.dtype)
        z = attrs.argmax(dim=1)
        vec = positions_strained[dst] - positions_strained[src] + shifts
        site = self.core(attrs=attrs, z=z, vec=vec, src=src, dst=dst)[:, 0]
        node_energy = self.atomic_energies[z] + self.scale * site + self.shift
        energy = torch.zeros(graphs, dtype=site.dtype, device=site.device).index_add(0, batch, node_energy)
        out = {"energy": energy, "node_energy": node_energy}
        if compute_force or compute_stress:
            grads = torch.autograd.grad(energy.sum(), inputs, create_graph=training)
            out["forces"] = -grads[0]
            if compute_stress:
                volume = torch.linalg.det(cell).abs()[:, None, None]
                out["virials"] = -grads[1]
                out["stress"] = torch.where(volume > 0, grads[1] / volume.where(volume > 0, 1.0), 0.0)
        return out

    def write(self, path: str | Path) -> Path:
        """Write the diagram's text to ``path`` (``fdg draw`` and ``fdg report`` read it)."""
        path = Path(path)
        path.write_text(self.text, encoding="utf-8")
        return path

    def save(self, folder: str | Path) -> Path:
        """Write the diagram (``model.fdg``), the weights and buffers (``state.pt``) and the cost report."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.write(folder / TEXT)
        setup = {"diagram": self.diagram, "params": self.params, "r_max": self.r_max}
        torch.save({"setup": setup, "state": self.state_dict()}, folder / STATE)
        (folder / REPORT).write_text(str(self.core.report), encoding="utf-8")
        return folder


def load(folder: str | Path) -> Potential:
    """The potential :meth:`Potential.save` wrote into ``folder``."""
    folder = Path(folder)
    saved = torch.load(folder / STATE, weights_only=True)
    state, setup = saved["state"], saved["setup"]
    text = (folder / TEXT).read_text(encoding="utf-8")
    model = Potential(text, state["atomic_numbers"].tolist(), state["atomic_energies"], **setup)
    model.load_state_dict(state)
    return model.to(state["atomic_energies"].dtype)


def batch_dict(
    positions: Tensor,
    species: Tensor,
    elements: int,
    edge_index: Tensor,
    batch: Tensor,
    graphs: int,
    unit_shifts: Tensor | None = None,
    cell: Tensor | None = None,
) -> dict[str, Tensor]:
    """mace-torch's batch dictionary for configurations whose atoms have ``species`` (indices into the
    potential's ``atomic_numbers``) and belong to configuration ``batch``; ``unit_shifts`` (integer cell
    translations per edge) and ``cell`` (``[graphs, 3, 3]``) for periodic ones."""
    edges = edge_index.shape[1]
    zeros = positions.new_zeros(edges, 3)
    cell = positions.new_zeros(graphs, 3, 3) if cell is None else cell.to(positions.dtype)
    unit_shifts = zeros if unit_shifts is None else unit_shifts.to(positions.dtype)
    return {
        "positions": positions,
        "node_attrs": nn.functional.one_hot(species, elements).to(positions.dtype),
        "edge_index": edge_index,
        "batch": batch,
        "ptr": torch.arange(graphs + 1),
        "cell": cell,
        "unit_shifts": unit_shifts,
        "shifts": torch.einsum("ei,eij->ej", unit_shifts, cell[batch[edge_index[0]]]),
    }
