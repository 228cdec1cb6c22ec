"""An ASE calculator for any :class:`~fdg.interop.potential.Potential`: converted mace-torch models
(``fdg.interop.mace.convert``, ``fdg.interop.potential.load``) and the potentials ``training/`` trains.

The neighbour list is ASE's (``ase.neighborlist.neighbor_list``, linear in the atoms, periodic cells and mixed
boundary conditions included), rebuilt at every call: an edge from atom ``i`` to atom ``j`` with cell translation
``S`` has the vector ``r_j - r_i + S @ cell``, as mace-torch's ``get_neighborhood`` builds it.  Energies are in
the potential's units (eV for mace-torch's), forces per length, and the stress (periodic cells only) in ASE's
Voigt order.  ASE is needed only here: ``import fdg`` never imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator as AseCalculator
from ase.calculators.calculator import all_changes
from ase.neighborlist import neighbor_list
from ase.stress import full_3x3_to_voigt_6_stress

from fdg.interop.potential import Potential, batch_dict


class Calculator(AseCalculator):
    """``atoms.calc = Calculator(potential)``: energy, free_energy, energies (per atom), forces, stress."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]  # noqa: RUF012 (ASE's type)

    def __init__(self, potential: Potential, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.potential = potential.eval()
        self.dtype = potential.atomic_energies.dtype
        self.species = {int(z): s for s, z in enumerate(potential.atomic_numbers.tolist())}

    def calculate(
        self, atoms: Atoms | None = None, properties: list[str] | None = None, system_changes: list[str] = all_changes
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        atoms = self.atoms
        assert atoms is not None  # Calculator.calculate set it
        unknown = sorted(set(atoms.numbers.tolist()) - set(self.species))
        if unknown:
            known = ", ".join(map(str, self.species))
            raise ValueError(f"atomic numbers {unknown} are not among the potential's elements ({known})")
        sender, receiver, unit_shifts = neighbor_list("ijS", atoms, self.potential.r_max)
        tensor = torch.as_tensor
        data = batch_dict(
            positions=tensor(atoms.positions, dtype=self.dtype),
            species=tensor([self.species[int(z)] for z in atoms.numbers], dtype=torch.long),
            elements=len(self.species),
            edge_index=tensor(np.stack([sender, receiver]), dtype=torch.long),
            batch=torch.zeros(len(atoms), dtype=torch.long),
            graphs=1,
            unit_shifts=tensor(unit_shifts, dtype=self.dtype),
            cell=tensor(atoms.cell.array, dtype=self.dtype)[None],
        )
        out = self.potential(data, compute_stress=bool(atoms.pbc.all()))
        energy = out["energy"].item()
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out["node_energy"].detach().numpy().copy(),
            "forces": out["forces"].detach().numpy().copy(),
        }
        if "stress" in out:
            self.results["stress"] = full_3x3_to_voigt_6_stress(out["stress"][0].detach().numpy())
