"""The results table of docs/results.md, from nothing: data, both models trained under torchrun, the table.

    python -m training.results            # what `make results` runs

1. Generates the ethanol dataset (training.md, seed 0) unless the file exists.
2. Sizes the fusion variant: the largest multiplicity whose parameter count does not exceed MACE's.
3. Trains MACE, then MACE+fusion, each with `torchrun --nproc_per_node 2` (gloo, one thread per process),
   the same seed, split, epochs and optimizer settings.
4. Prints the table (held-out energy and force MAE, parameters, epochs, time) and writes it to
   `<runs>/results.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .model import ModelConfig, build, parameter_count

# The recipe of the table (docs/results.md says the same).
DATASET = {"molecule": "ethanol", "samples": 2000, "temperature": 500.0, "stride": 10, "seed": 0}
TRAIN = ["--n-train", "1000", "--n-val", "100", "--batch-size", "16", "--seed", "0"]
TRAIN += ["--lmax", "3", "--correlation", "3"]
MACE_MUL = 32


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def fusion_mul(elements: tuple[int, ...]) -> tuple[int, int, int]:
    """(multiplicity of the fusion variant, its parameter count, MACE's): the largest mul that is not bigger."""

    def count(variant: str, mul: int) -> int:
        config = ModelConfig(variant, elements, (0.0,) * len(elements), 1.0, 8.0, mul=mul)
        return parameter_count(build(config))

    budget = count("mace", MACE_MUL)
    for mul in range(MACE_MUL, 0, -1):
        if (params := count("mace_fusion", mul)) <= budget:
            return mul, params, budget
    raise SystemExit("no multiplicity keeps MACE+fusion within MACE's parameter count")


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def table(runs: Path) -> str:
    rows = [
        "| model | parameters | channels (mul) | epochs | energy MAE (meV) | force MAE (meV/Å) | training time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("mace", "mace_fusion"):
        m = json.loads((runs / name / "metrics.json").read_text())
        config = torch.load(runs / name / "best.pt", weights_only=False)["config"]
        rows.append(
            f"| {name} | {m['parameters']} | {config['mul']} | {m['epochs']} | {1000 * m['test']['energy_mae']:.1f}"
            f" | {1000 * m['test']['force_mae']:.1f} | {m['train_seconds']:.0f} |"
        )
    split = m["split"]
    rows.append("")
    rows.append(
        f"Held out: {split['test']} configurations (train {split['train']}, validation {split['val']},"
        f" split seed {split['seed']}); {m['world_size']} DDP processes."
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Reproduce the table of docs/results.md")
    parser.add_argument("--data", type=Path, default=Path("build/data/ethanol.npz"))
    parser.add_argument("--runs", type=Path, default=Path("build/runs"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--nproc", type=int, default=2, help="DDP processes per training run")
    args = parser.parse_args(argv)
    start, load_before = time.perf_counter(), load_average()
    python = sys.executable
    if not args.data.exists():
        run([python, "-m", "training.md", *(f"--{k}={v}" for k, v in DATASET.items()), "--out", str(args.data)])
    with np.load(args.data) as f:
        elements = tuple(sorted({int(z) for z in f["numbers"]}))
    mul, fused_params, mace_params = fusion_mul(elements)
    print(f"MACE mul={MACE_MUL}: {mace_params} parameters; MACE+fusion mul={mul}: {fused_params}", flush=True)
    torchrun = shutil.which("torchrun", path=str(Path(python).parent)) or "torchrun"
    for name, channels in (("mace", MACE_MUL), ("mace_fusion", mul)):
        out = args.runs / name
        if out.exists():
            shutil.rmtree(out)
        command = [torchrun, f"--nproc_per_node={args.nproc}", "-m", "training.train", "--dataset", str(args.data)]
        command += ["--model", name, "--mul", str(channels), "--epochs", str(args.epochs), "--out", str(out)]
        run([*command, *TRAIN, "--threads", "1"])
    text = table(args.runs)
    elapsed = time.perf_counter() - start
    text += f"\nWall time {elapsed / 60:.1f} min; load average {load_before} before, {load_average()} after."
    (args.runs / "results.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by torchrun's processes (torchrun would set it too)
    main()
