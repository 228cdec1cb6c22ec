"""NVE dynamics in ASE: a converted model conserves energy as well as the original does, on the same trajectory.

1000 velocity-Verlet steps (0.5 fs) of a periodic box from 300 K, once with mace-torch's own ``MACECalculator``
and once with ``fdg.interop.calculator.Calculator`` around ``convert(model)``; the model is mace's default
initialisation (not the random-normal weights of the other tests, which make a rough energy surface).  The
figures of the last run are in docs/interop.md.

Run in the MACE environment (``make test-mace``)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from mace.calculators import MACECalculator
from models import build_mace, configurations

from fdg.interop.calculator import Calculator
from fdg.interop.mace import convert

warnings.filterwarnings("ignore", message="The TorchScript type system")  # raised inside MACE's own modules
warnings.filterwarnings("ignore", message="Use thermalize_momenta")

STEPS = 1000


def _nve(atoms: Atoms, calculator: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    total, kinetic = [], []
    for _ in range(STEPS):
        dynamics.run(1)
        kinetic.append(atoms.get_kinetic_energy())
        total.append(kinetic[-1] + atoms.get_potential_energy())
    return np.array(total), np.array(kinetic), atoms.positions


def test_nve_conserves_energy_as_mace_does() -> None:
    torch.manual_seed(0)
    model = build_mace(hidden="4x0e + 4x1o", lmax=2, correlation=2, radial=(8, 8), randomize=False)
    (atoms,) = configurations(2, periodic=True, count=1, atoms=12)
    theirs = _nve(atoms, MACECalculator(models=model, device="cpu", default_dtype="float64"))
    ours = _nve(atoms, Calculator(convert(model)))
    drift = {name: np.abs(run[0] - run[0][0]).max() for name, run in (("mace", theirs), ("fdg", ours))}
    print(
        f"NVE {STEPS} steps: max |E - E(0)| mace-torch {drift['mace']:.2e} eV, fdg {drift['fdg']:.2e} eV;"
        f" kinetic energy range {np.ptp(ours[1]):.3f} eV; positions differ by {np.abs(ours[2] - theirs[2]).max():.1e} Å"
    )
    assert np.ptp(ours[1]) > 0.05  # the atoms move
    assert drift["fdg"] <= 1.5 * drift["mace"] + 1e-9
    gap = np.abs(ours[0] - theirs[0])
    # the same trajectory until rounding differences grow, as in any chaotic dynamics (measured: the energies
    # differ by 4e-15 eV at step 200, 1e-11 at 500, 1e-7 at 800)
    assert gap[:500].max() < 1e-9, gap[:500].max()
