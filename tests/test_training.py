"""Smoke tests of training/: GFN2-xTB data, the potential built from diagrams/mace*.fdg, training and DDP.

Small on purpose (a few seconds each): ten ethanol configurations from real tblite dynamics, models with 4
channels, a few optimizer steps.  The full-size run is `make results` (docs/results.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from fdg.runtime import rand_matrix
from training import data, model, train

# tblite is found, not imported: training.md must load it first (it sets tblite's OpenMP threads).
if importlib.util.find_spec("tblite") is None or importlib.util.find_spec("ase") is None:
    pytest.skip("needs the train extra (tblite, ase)", allow_module_level=True)
from training import md

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models, one thread
SMALL = {"mul": 4, "lmax": 2, "nu": 2, "radial_hidden": 8}  # ModelConfig fields


@pytest.fixture(scope="module")
def ethanol(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ethanol.npz"
    np.savez(path, **md.generate("ethanol", samples=10, temperature_k=500.0, stride=2, seed=3, progress=False))
    return path


def test_dynamics_is_seeded_and_labels_are_gfn2(ethanol: Path) -> None:
    again = md.generate("ethanol", samples=10, temperature_k=500.0, stride=2, seed=3, progress=False)
    other = md.generate("ethanol", samples=10, temperature_k=500.0, stride=2, seed=4, progress=False)
    with np.load(ethanol) as saved:
        # bitwise on one OpenMP thread; 1e-10 leaves room for a user's OMP_NUM_THREADS (reduction order)
        np.testing.assert_allclose(saved["positions"], again["positions"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(saved["energy"], again["energy"], rtol=0, atol=1e-10)
        assert not np.allclose(saved["positions"], other["positions"])
        assert saved["positions"].shape == (10, 9, 3) and sorted(set(saved["numbers"])) == [1, 6, 8]
        atoms = md.molecule("CH3CH2OH")
        atoms.positions = saved["positions"][-1]
        atoms.calc = md.xtb()
        assert atoms.get_potential_energy() == pytest.approx(saved["energy"][-1], abs=1e-8)
        np.testing.assert_allclose(atoms.get_forces(), saved["forces"][-1], atol=1e-5)  # SCF tolerance


def test_stilbene_labels_exclude_the_restraint() -> None:
    run = md.generate("stilbene", samples=2, temperature_k=300.0, stride=1, seed=0, progress=False)
    atoms = md.stilbene()
    atoms.positions = run["positions"][0]
    atoms.calc = md.xtb()
    assert atoms.get_potential_energy() == pytest.approx(run["energy"][0], abs=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), run["forces"][0], atol=1e-5)
    assert abs(run["dihedral"][0]) > 150  # starts trans; the restraint turns it towards cis


def test_dihedral_gradient() -> None:
    x = np.random.default_rng(0).normal(size=(4, 3))
    _, grad = md.dihedral(x)
    numeric = np.zeros_like(x)
    for i, j in np.ndindex(4, 3):
        step = np.zeros_like(x)
        step[i, j] = 1e-6
        numeric[i, j] = (md.dihedral(x + step)[0] - md.dihedral(x - step)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-8)


def build(variant: str, path: Path) -> tuple[model.Potential, data.Molecules]:
    d = data.load(path)
    stats = data.statistics(d, torch.arange(6), cutoff=5.0)
    config = model.ModelConfig(
        variant, d.elements, stats.atomic_energies, stats.force_rms, stats.avg_neighbors, **SMALL
    )
    torch.manual_seed(0)
    return model.build(config).double(), d


@pytest.mark.parametrize("variant", sorted(model.VARIANTS))
def test_energy_invariant_forces_equivariant(variant: str, ethanol: Path) -> None:
    potential, d = build(variant, ethanol)
    b = data.batch(d, torch.arange(3))
    energy, forces = model.energy_and_forces(potential, b, training=False)
    rotation = rand_matrix(generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for Q in (rotation, -torch.eye(3, dtype=torch.float64)):
        moved = b._replace(positions=b.positions @ Q.T + torch.tensor([0.3, -1.0, 2.0]))
        energy2, forces2 = model.energy_and_forces(potential, moved, training=False)
        torch.testing.assert_close(energy2, energy, atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(forces2, forces @ Q.T, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("variant", sorted(model.VARIANTS))
def test_force_loss_trains_by_second_order_autograd(variant: str, ethanol: Path) -> None:
    """d(force loss)/d(weight) through forces = -dE/dr agrees with a central difference in the weight."""
    potential, d = build(variant, ethanol)
    b = data.batch(d, torch.arange(2))

    def force_loss() -> torch.Tensor:
        return (model.energy_and_forces(potential, b, training=True)[1] - b.forces).pow(2).sum()

    weights = [p for name, p in potential.named_parameters() if name.startswith("core.")]
    force_loss().backward()
    for w in weights[:3]:
        assert w.grad is not None and w.grad.abs().max() > 0
        k = int(w.grad.abs().argmax())
        shifted = []
        for step in (1e-5, -2e-5):
            with torch.no_grad():
                w.view(-1)[k] += step
            shifted.append(float(force_loss().detach()))
        with torch.no_grad():
            w.view(-1)[k] += 1e-5
        up, down = shifted
        assert float(w.grad.view(-1)[k]) == pytest.approx((up - down) / 2e-5, rel=1e-5)


def arguments(path: Path, out: Path, **overrides: object) -> argparse.Namespace:
    args = train.parse(["--dataset", str(path), "--out", str(out), "--quiet", "--dtype", "float64"])
    small = {"n_train": 6, "n_val": 2, "batch_size": 2, "epochs": 2, "lr": 0.005, "mul": 4, "lmax": 2}
    small |= {"correlation": 2, "radial_hidden": 8}
    for key, value in {**small, **overrides}.items():
        setattr(args, key, value)
    return args


def test_training_checkpoints_and_resume(ethanol: Path, tmp_path: Path) -> None:
    world = train.World(0, 1, torch.device("cpu"))
    _, metrics = train.fit(arguments(ethanol, tmp_path), world)
    assert metrics is not None and metrics["epochs"] == 2 and metrics["split"]["test"] == 2
    resumed_model, resumed = train.fit(arguments(ethanol, tmp_path, epochs=3, resume=True), world)
    assert resumed is not None and resumed["epochs"] == 3
    history = torch.load(tmp_path / "last.pt", weights_only=False)["train"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    # the best checkpoint, rebuilt from its config alone, reproduces the test errors the run reported
    loaded = train.load_model(tmp_path / "best.pt")
    split = data.split(10, 6, 2, seed=0)
    again = train.evaluate(loaded, data.load(ethanol), split.test, world)
    assert again == pytest.approx(resumed["test"], rel=1e-12)
    assert loaded.state_dict().keys() == resumed_model.state_dict().keys()


def _ddp_rank(rank: int, port: int, path: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0")
    torch.set_num_threads(1)
    world = train.init_world()
    try:
        trained, _ = train.fit(arguments(Path(path), Path(out)), world)
    finally:
        torch.distributed.destroy_process_group()
    torch.save([p.detach() for p in trained.parameters()], Path(out) / f"rank{rank}.pt")


def test_ddp_two_gloo_processes_match_one_process(ethanol: Path, tmp_path: Path) -> None:
    """Two ranks with half batches each end with identical weights, equal to one process with whole batches."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_rank, args=(port, str(ethanol), str(tmp_path / "ddp")), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1))
    single, _ = train.fit(arguments(ethanol, tmp_path / "one"), train.World(0, 1, torch.device("cpu")))
    for a, b, c in zip(rank0, rank1, single.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(a, c.detach(), atol=1e-9, rtol=1e-9)
