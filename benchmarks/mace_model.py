"""A whole mace-torch model against its fdg conversion (``fdg.interop.mace.convert``), side by side in one process.

    make venv-mace                                            # once
    .venv-mace/bin/python benchmarks/mace_model.py --threads 2
    options: [--hidden "128x0e + 128x1o"] [--lmax 3] [--correlation 3] [--dtype float64] [--repeat 5] [--warmup 2]

The model is what ``mace_run_train`` builds by default (RealAgnosticInteractionBlock, then the residual one; two
interactions; Bessel basis with polynomial cutoff, r_max 5; radial MLP [64, 64, 64]; MLP_irreps 16x0e) for H, C
and O, its weights at their initial values.  Systems: a cluster of ethanol molecules (72 atoms), a larger one
(297 atoms), and a periodic box of them (144 atoms), each as one batch from mace's own data loader.  Timed, for
both models on the same batch dictionary:

* energy + forces (what MD calls): ``model(batch)`` with forces by autograd;
* a training step: energy and force loss, forces kept in the graph (``training=True``), backward to the weights.

Before timing, the two models' energies and forces are checked to agree (float64: 1e-9 relative).
"""

from __future__ import annotations

import argparse
import functools
import os
import warnings
from collections.abc import Callable

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 torch.load()s pickled constants

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from e3nn import o3
from harness import add_timing_arguments, apply_timing_arguments, describe_machine, interleaved
from mace import data, tools
from mace.modules.blocks import RealAgnosticInteractionBlock, RealAgnosticResidualInteractionBlock
from mace.modules.models import MACE
from mace.tools.torch_geometric.dataloader import DataLoader

from fdg.interop.mace import convert
from fdg.interop.potential import Potential

warnings.filterwarnings("ignore", message="The TorchScript type system")  # raised inside MACE's own modules

ELEMENTS = [1, 6, 8]
R_MAX = 5.0


def ethanols(count: int, spacing: float, periodic: bool, seed: int = 0) -> Atoms:
    """``count`` ethanol molecules, randomly turned, on a cubic grid ``spacing`` apart (a box of it if periodic)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(count ** (1 / 3)))
    out = Atoms()
    for k in range(count):
        one = molecule("CH3CH2OH")
        one.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COP")
        one.translate(spacing * np.array(np.unravel_index(k, (side,) * 3)) - one.get_center_of_mass())
        out += one
    if periodic:
        out.set_cell(spacing * side * np.eye(3))
        out.pbc = True
    return out


def mace_batch(atoms: Atoms) -> dict[str, torch.Tensor]:
    table = tools.AtomicNumberTable(ELEMENTS)
    config = data.config_from_atoms(atoms)
    (loaded,) = DataLoader([data.AtomicData.from_config(config, z_table=table, cutoff=R_MAX)], batch_size=1)
    return loaded.to_dict()


def build(args: argparse.Namespace) -> MACE:
    torch.manual_seed(0)
    return MACE(
        r_max=R_MAX,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=args.lmax,
        interaction_cls=RealAgnosticResidualInteractionBlock,
        interaction_cls_first=RealAgnosticInteractionBlock,
        num_interactions=2,
        num_elements=len(ELEMENTS),
        hidden_irreps=o3.Irreps(args.hidden),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array([-13.6, -1029.8, -2041.3]),
        avg_num_neighbors=12.0,
        atomic_numbers=ELEMENTS,
        correlation=args.correlation,
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="128x0e + 128x1o")
    parser.add_argument("--lmax", type=int, default=3)
    parser.add_argument("--correlation", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    add_timing_arguments(parser)
    parser.set_defaults(repeat=5)
    args = parser.parse_args()
    apply_timing_arguments(args)
    torch.set_default_dtype(getattr(torch, args.dtype))
    model = build(args)
    ours = convert(model)
    print(f"MACE {args.hidden}, lmax {args.lmax}, correlation {args.correlation}, {args.dtype}")
    print(f"  {describe_machine()}")
    systems = {
        "72-atom cluster": ethanols(8, 6.0, periodic=False),
        "297-atom cluster": ethanols(33, 6.0, periodic=False),
        "144-atom periodic box": ethanols(16, 4.6, periodic=True),
    }
    for name, atoms in systems.items():
        batch = mace_batch(atoms)
        print(f"  {name} ({batch['edge_index'].shape[1]} edges):")
        compare(model, ours, batch, args)


def compare(model: MACE, ours: Potential, batch: dict[str, torch.Tensor], args: argparse.Namespace) -> None:
    """Check both models agree on ``batch``, then time energy+forces and a training step, interleaved."""
    calls = {
        "fdg": lambda training=False: ours(dict(batch), training=training),
        "mace-torch": lambda training=False: model(dict(batch), training=training),
    }
    reference, got = calls["mace-torch"](), calls["fdg"]()
    for key in ("energy", "forces"):
        error = (got[key] - reference[key]).abs().max().item() / reference[key].abs().max().item()
        assert error < (1e-9 if args.dtype == "float64" else 1e-4), (key, error)
    target = {key: reference[key].detach() + 0.1 for key in ("energy", "forces")}

    def step(call: Callable[..., dict[str, torch.Tensor]]) -> torch.Tensor:
        out = call(training=True)
        return (out["energy"] - target["energy"]).pow(2).mean() + (out["forces"] - target["forces"]).pow(2).mean()

    parameters = [*model.parameters(), *ours.parameters()]
    forces = {name: functools.partial(lambda c: c()["forces"], call) for name, call in calls.items()}
    training = {name: functools.partial(step, call) for name, call in calls.items()}
    ef = interleaved(forces, parameters, args.repeat, args.warmup, backward=False, no_grad=False)
    tr = interleaved(training, parameters, args.repeat, args.warmup, backward=True)
    for label, times in (("energy+forces", ef), ("training step", tr)):
        fdg_s, mace_s = np.median(times["fdg"]), np.median(times["mace-torch"])
        rounds = np.array(times["mace-torch"]) / np.array(times["fdg"])
        print(
            f"    {label:14} fdg {fdg_s * 1e3:8.1f} ms  mace-torch {mace_s * 1e3:8.1f} ms"
            f"  ratio {mace_s / fdg_s:5.2f} ({rounds.min():.2f}-{rounds.max():.2f})"
        )


if __name__ == "__main__":
    main()
