"""fdg.interop.calculator: fdg potentials in ASE.  Forces and stresses equal ASE's finite differences of the
energy; an NVE run conserves energy; bad input is refused by name.  The potential is training/'s (its diagram is
diagrams/mace.fdg, small sizes, seeded weights); tests_mace/ runs converted mace-torch models the same way."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

if importlib.util.find_spec("ase") is None:
    pytest.skip("needs ase (the test extra)", allow_module_level=True)
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from fdg.interop.calculator import Calculator
from training import model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models, one thread
CONFIG = model.ModelConfig(
    "mace", (1, 6, 8), (-13.6, -1029.8, -2041.3), 0.7, 4.0, mul=4, lmax=2, nu=2, cutoff=4.0, radial_hidden=8
)


@pytest.fixture(scope="module")
def calculator() -> Calculator:
    torch.manual_seed(0)
    return Calculator(model.build(CONFIG).double())


def periodic() -> Atoms:
    rng = np.random.default_rng(4)
    cell = 3.6 * np.eye(3) + rng.normal(scale=0.3, size=(3, 3))  # sheared, narrower than two cutoffs: edges wrap
    return Atoms("CHOHCHOH", scaled_positions=rng.uniform(size=(8, 3)), cell=cell, pbc=True)


@pytest.mark.parametrize("atoms", [molecule("CH3CH2OH"), periodic()], ids=["ethanol", "periodic"])
def test_forces_are_minus_the_energy_gradient(atoms: Atoms, calculator: Calculator) -> None:
    atoms.calc = calculator
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 1e-2  # not zeros
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5), atol=1e-6)
    assert atoms.get_potential_energy() == pytest.approx(atoms.get_potential_energies().sum(), rel=1e-12)


def test_stress_is_the_strain_derivative_over_the_volume(calculator: Calculator) -> None:
    atoms = periodic()
    atoms.calc = calculator
    stress = atoms.get_stress()
    assert np.abs(stress).max() > 1e-3
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6), atol=1e-6)


def test_a_cluster_has_no_stress(calculator: Calculator) -> None:
    atoms = molecule("H2O")
    atoms.calc = calculator
    with pytest.raises(Exception, match="stress"):
        atoms.get_stress()


@pytest.mark.filterwarnings("ignore:Use thermalize_momenta")  # its replacement is newer than ase 3.23
def test_nve_conserves_energy(calculator: Calculator) -> None:
    atoms = molecule("CH3CH2OH")
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=0.25 * units.fs)
    total, kinetic = [], []
    for _ in range(200):
        dynamics.run(1)
        kinetic.append(atoms.get_kinetic_energy())
        total.append(kinetic[-1] + atoms.get_potential_energy())
    assert np.ptp(kinetic) > 0.02  # the atoms move: energy flows between kinetic and potential
    assert np.ptp(total) < 1e-3 * np.ptp(kinetic), (np.ptp(total), np.ptp(kinetic))  # measured: 6e-5


def test_an_element_the_potential_lacks_is_refused_by_name(calculator: Calculator) -> None:
    atoms = molecule("NH3")
    atoms.calc = calculator
    with pytest.raises(ValueError, match=r"atomic numbers \[7\] are not among the potential's elements \(1, 6, 8\)"):
        atoms.get_potential_energy()
