"""Reference data: seeded Langevin molecular dynamics with GFN2-xTB (tblite) energies and forces.

Two molecules:

* ``ethanol``: free Langevin dynamics at a stated temperature, a sample every ``stride`` steps.
* ``stilbene``: the cis/trans torsion of the central C=C bond.  Ground-state dynamics never crosses
  the ~3 eV torsion barrier, so the torsion is *driven*: a harmonic restraint on the dihedral
  C(ipso)-C=C-C(ipso) pulls it slowly from trans (180°) to cis (0°) while Langevin dynamics samples.
  The restraint only steers sampling: the saved labels are tblite's own energy and forces, without it.

Deterministic by seed (the thermostat and the initial velocities draw from one seeded generator;
tblite is a deterministic SCF).  The file is a compressed ``.npz`` (no cell: molecules in vacuum):
``positions [n, atoms, 3]`` Å, ``numbers [atoms]``, ``energy [n]`` eV, ``forces [n, atoms, 3]`` eV/Å,
and the settings that made it (``temperature_K``, ``seed``, ``method``, ``molecule``, ``dihedral``).

    python -m training.md --molecule ethanol --samples 3000 --seed 0 --out build/data/ethanol.npz
"""

from __future__ import annotations

import os

# One OpenMP thread for tblite, set before its library loads: for molecules this small threads cost more than
# they save (ethanol: 2 ms a step on one thread, 30 ms on two when the CPUs are busy), and one thread makes the
# SCF's sums, and so the whole trajectory, bitwise reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import ctypes
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.optimize import BFGS

METHOD = "GFN2-xTB"
# The stilbene torsion C(ipso)-C=C-C(ipso), and H-C=C-H, which turns with it in a true rotation about C=C:
# atom indices in the geometry built by `stilbene`.
STILBENE_DIHEDRAL = (2, 0, 1, 14)
STILBENE_HYDROGENS = (13, 0, 1, 25)


def xtb() -> Calculator:
    """tblite's ASE calculator (imported here so that reading a dataset never needs tblite).

    tblite runs on one OpenMP thread (see the top of this file) unless OMP_NUM_THREADS says otherwise.
    accuracy=0.01 tightens the SCF 100-fold: tblite starts each step from the previous step's solution, and at
    the default a force then depends on the trajectory's history by up to 1e-4 eV/Å; here by < 1e-6 eV/Å,
    for 20% more time.
    """
    from tblite.ase import TBLite

    return TBLite(method=METHOD, verbosity=0, accuracy=0.01)


def _phenyl(anchor: np.ndarray, direction: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """A flat phenyl ring whose ipso carbon sits 1.47 Å from `anchor` along `direction` (in the xy plane)."""
    ipso = anchor + 1.47 * direction
    centre = ipso + 1.39 * direction
    symbols, points = [], []
    for k in range(6):
        angle = math.pi + k * math.pi / 3
        c, s = math.cos(angle), math.sin(angle)
        radial = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1], 0.0])
        symbols.append("C")
        points.append(centre + 1.39 * radial)
    for k in range(1, 6):  # hydrogens on every ring carbon but the ipso one
        symbols.append("H")
        points.append(centre + 2.47 * (points[k] - centre) / 1.39)
    return symbols, points


def stilbene() -> Atoms:
    """Planar trans-stilbene C14H12 from ideal bond lengths and 120° angles (optimized before use).

    Atoms 0, 1 are the vinyl carbons, 2-12 the first phenyl (ipso carbon 2), 13 and 25 the vinyl
    hydrogens, 14-24 the second phenyl (ipso 14).  The cis isomer is reached by the driven torsion.
    """
    a, b = np.array([-0.67, 0.0, 0.0]), np.array([0.67, 0.0, 0.0])

    def unit(degrees: float) -> np.ndarray:
        return np.array([math.cos(math.radians(degrees)), math.sin(math.radians(degrees)), 0.0])

    sym_a, ring_a = _phenyl(a, unit(120))
    sym_b, ring_b = _phenyl(b, unit(-60))
    symbols = ["C", "C", *sym_a, "H", *sym_b, "H"]
    positions = np.vstack([a, b, *ring_a, a + 1.08 * unit(240), *ring_b, b + 1.08 * unit(60)])
    return Atoms(symbols=symbols, positions=positions)


def dihedral(x: np.ndarray) -> tuple[float, np.ndarray]:
    """The dihedral angle of four points (radians, in (-π, π]) and its gradient ``[4, 3]``.

    Uses the atan2 form, which stays accurate near 0 and π where an arccos form loses its gradient.
    """
    b1, b2, b3 = x[1] - x[0], x[2] - x[1], x[3] - x[2]
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    norm_b2 = np.linalg.norm(b2)
    phi = math.atan2(norm_b2 * float(b1 @ n2), float(n1 @ n2))
    g0 = -norm_b2 / float(n1 @ n1) * n1
    g3 = norm_b2 / float(n2 @ n2) * n2
    r1, r3 = float(b1 @ b2) / norm_b2**2, float(b3 @ b2) / norm_b2**2
    g1 = r3 * g3 - (1 + r1) * g0
    g2 = r1 * g0 - (1 + r3) * g3
    return phi, np.stack([g0, g1, g2, g3])


class DihedralRestraint(Calculator):
    """A harmonic bias ``k/2 Σ (φ - φ0)^2`` (differences wrapped into (-π, π]) on dihedrals sharing one target.

    Added to tblite only to steer the dynamics; the dataset stores tblite's results alone.  Stilbene needs
    two: pulled by the C(ipso) dihedral alone, the vinyl carbons pyramidalize and the molecule breaks a C-C
    bond instead of rotating about C=C (seen: H-C=C-H stayed trans, 4.5 eV above trans-stilbene at "cis").
    """

    implemented_properties = ["energy", "forces"]  # noqa: RUF012 (ASE declares it a list)

    def __init__(self, inner: Calculator, dihedrals: list[tuple[int, int, int, int]], k: float) -> None:
        super().__init__()
        self.inner, self.dihedrals, self.k, self.target = inner, [list(d) for d in dihedrals], k, 0.0

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: tuple[str, ...] = ("energy",),
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        forces = self.inner.get_forces(self.atoms).copy()
        energy = self.inner.get_potential_energy(self.atoms)
        for atoms4 in self.dihedrals:
            phi, grad = dihedral(self.atoms.positions[atoms4])
            delta = (phi - self.target + math.pi) % (2 * math.pi) - math.pi
            forces[atoms4] -= self.k * delta * grad
            energy += 0.5 * self.k * delta**2
        self.results = {"energy": energy, "forces": forces}


def _thermalize(atoms: Atoms, temperature_k: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta drawn from `rng`, without net translation or rotation."""
    sigma = np.sqrt(atoms.get_masses() * units.kB * temperature_k)
    atoms.set_momenta(rng.standard_normal((len(atoms), 3)) * sigma[:, None])
    Stationary(atoms)
    ZeroRotation(atoms)


def _langevin(atoms: Atoms, temperature_k: float, rng: np.random.Generator) -> Langevin:
    # 0.5 fs resolves the C-H stretch; friction 0.02/fs thermalizes within a few hundred steps.  fixcm=False:
    # the centre of mass may drift (the energy does not depend on it), and ASE's fixcm biases the ensemble.
    step, friction = 0.5 * units.fs, 0.02 / units.fs
    return Langevin(atoms, step, temperature_K=temperature_k, friction=friction, fixcm=False, rng=rng)


def run_ethanol(samples: int, temperature_k: float, stride: int, seed: int) -> Iterator[Atoms]:
    """Yield `samples` configurations of ethanol, one every `stride` steps after 20 strides of equilibration."""
    rng = np.random.default_rng(seed)
    atoms = molecule("CH3CH2OH")
    atoms.calc = xtb()
    BFGS(atoms, logfile=None).run(fmax=0.02)
    _thermalize(atoms, temperature_k, rng)
    dyn = _langevin(atoms, temperature_k, rng)
    dyn.run(20 * stride)
    for _ in range(samples):
        dyn.run(stride)
        yield atoms


def run_stilbene(samples: int, temperature_k: float, stride: int, seed: int) -> Iterator[Atoms]:
    """Yield `samples` stilbene configurations while a restraint turns the torsion from trans (180°) to cis (0°).

    The restraint's target moves by 180°/samples between samples (72° a picosecond for 1000 samples at stride
    5), slowly enough for the rest of the molecule to follow, so the samples cover the whole torsion path.
    """
    rng = np.random.default_rng(seed)
    atoms = stilbene()
    tb = xtb()
    atoms.calc = tb
    BFGS(atoms, logfile=None).run(fmax=0.02)
    # 20 eV/rad²: the torsion lags the target by < 0.15 rad where the barrier is steepest (about 3 eV/rad).
    bias = DihedralRestraint(tb, [STILBENE_DIHEDRAL, STILBENE_HYDROGENS], k=20.0)
    bias.target = math.pi
    atoms.calc = bias
    _thermalize(atoms, temperature_k, rng)
    dyn = _langevin(atoms, temperature_k, rng)
    dyn.run(20 * stride)
    for s in range(samples):
        bias.target = math.pi * (1 - s / max(samples - 1, 1))
        dyn.run(stride)
        yield atoms


RUNS: dict[str, Callable[[int, float, int, int], Iterator[Atoms]]] = {"ethanol": run_ethanol, "stilbene": run_stilbene}


@contextmanager
def openmp_threads(count: int) -> Iterator[None]:
    """Set the OpenMP thread count of the process's libgomp for a while, then restore it.

    tblite links libgomp.so.1.  In a process that imported torch first, that is torch's copy, which read
    OMP_NUM_THREADS long before this module set it, so the environment variable alone does not reach tblite
    there (measured: stilbene 15x slower on 2 busy cores).  Without a libgomp (not Linux), nothing to do.
    """
    try:
        gomp = ctypes.CDLL("libgomp.so.1")
    except OSError:
        yield
        return
    before = gomp.omp_get_max_threads()
    gomp.omp_set_num_threads(count)
    try:
        yield
    finally:
        gomp.omp_set_num_threads(before)


def generate(name: str, samples: int, temperature_k: float, stride: int, seed: int, progress: bool = True) -> dict:
    """Run the dynamics and collect unbiased GFN2-xTB labels; returns the arrays saved by `main`."""
    if name not in RUNS:
        raise SystemExit(f"unknown molecule {name!r}; choose one of: {', '.join(RUNS)}")
    with openmp_threads(int(os.environ["OMP_NUM_THREADS"])):
        return _collect(name, samples, temperature_k, stride, seed, progress)


def _collect(name: str, samples: int, temperature_k: float, stride: int, seed: int, progress: bool) -> dict:
    from tqdm import tqdm

    positions, energy, forces, angles = [], [], [], []
    numbers = None
    run = RUNS[name](samples, temperature_k, stride, seed)
    for atoms in tqdm(run, total=samples, desc=f"{name} MD", disable=not progress, unit="conf"):
        inner = atoms.calc.inner if isinstance(atoms.calc, DihedralRestraint) else atoms.calc
        assert inner is not None
        numbers = atoms.numbers.copy()
        positions.append(atoms.positions.copy())
        energy.append(inner.get_potential_energy(atoms))
        forces.append(inner.get_forces(atoms).copy())
        if name == "stilbene":
            angles.append(math.degrees(dihedral(atoms.positions[list(STILBENE_DIHEDRAL)])[0]))
    out = {
        "positions": np.array(positions),
        "numbers": numbers,
        "energy": np.array(energy),
        "forces": np.array(forces),
        "temperature_K": temperature_k,
        "seed": seed,
        "stride": stride,
        "method": METHOD,
        "molecule": name,
    }
    if angles:
        out["dihedral"] = np.array(angles)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecule", choices=sorted(RUNS), default="ethanol")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--temperature", type=float, default=500.0, help="Langevin temperature in K")
    parser.add_argument("--stride", type=int, default=10, help="MD steps (0.5 fs) between saved samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    data = generate(args.molecule, args.samples, args.temperature, args.stride, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    print(f"wrote {args.out}: {len(data['energy'])} configurations of {args.molecule}")


if __name__ == "__main__":
    main()
