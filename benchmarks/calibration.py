"""The cost model against the clock: every diagram of diagrams/ at its defaults, estimated and measured.

    .venv/bin/python benchmarks/calibration.py [--repeat 5] [--threads N] [--fit]

For each diagram, the report's estimated forward + backward time at its default sizes (edge = 20000 rows, every
other axis 1000, a fixed range its own size; ``fdg report``) next to the median of ``--repeat`` timed forward +
backward calls of the compiled module on random inputs of those sizes (float32, after one warm-up call; the loss is
the sum of squares of every output).  The last column is estimate / measurement: the issue's goal is within 2x
(0.5-2.0) for every row.  Absolute times on a shared machine drift: the script prints the load.

``--fit`` also splits each estimate into its compute, memory and launch terms (``fdg.cost.model.seconds``) and
fits one factor per term (the smallest worst-case ratio between estimate and measurement), then prints the constants of
``cost/model.py`` those factors give: the rates between lowerings keep their ratios, only the balance of compute,
memory and call overhead is calibrated.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from harness import add_timing_arguments, apply_timing_arguments, describe_machine

import fdg
from fdg.cost import model
from fdg.frontend.parser import parse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' random inputs from a module's declarations
from module_inputs import random_inputs  # noqa: E402


def measure(module: torch.nn.Module, inputs: dict[str, torch.Tensor], repeat: int) -> float:
    """Median seconds of forward + backward (gradients of every floating input and parameter)."""
    leaves = [t for t in inputs.values() if t.is_floating_point()] + list(module.parameters())
    times = []
    for round_ in range(repeat + 1):
        for leaf in leaves:
            leaf.grad = None
        start = time.perf_counter()
        out = module(**inputs)
        outputs = out if isinstance(out, tuple) else (out,)
        sum(o.pow(2).sum() for o in outputs).backward()
        if round_:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def terms(report: fdg.Report) -> tuple[float, float, float]:
    """The estimate's compute, memory and launch seconds (their sum is ``report.plan.seconds``)."""
    compute = memory = calls = 0.0
    for step in report.steps:
        n = model.rows(step, report.sizes)
        compute += (step.flops + step.backward_flops) * n / model.FLOP_RATE[step.lowering]
        memory += (step.bytes + step.backward_bytes) * n / model.BANDWIDTH
        calls += 3 * model.launches(step, report.sizes) * model.LAUNCH
    return compute, memory, calls


def fit(parts: list[tuple[float, float, float]], measured: list[float]) -> np.ndarray:
    """Factors ``f > 0`` (from 1/8 to 8, on a grid of ratio 2^(1/8)) for which ``parts @ f`` is closest to
    ``measured`` in the worst case: the smallest largest factor between estimate and measurement."""
    a = np.array(parts) / np.array(measured)[:, None]
    grid = 2.0 ** (np.arange(-24, 25) / 8)
    f = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)  # every factor triple
    worst = np.abs(np.log(f @ a.T)).max(1)
    return f[int(worst.argmin())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser)
    parser.add_argument("--fit", action="store_true", help="fit the cost model's compute, memory and launch terms")
    args = parser.parse_args()
    apply_timing_arguments(args)
    print(describe_machine())
    print(f"{'diagram':<20} {'sizes':<36} {'estimated':>10} {'measured':>10} {'est/meas':>9}")
    parts, times = [], []
    for path in sorted((ROOT / "diagrams").glob("*.fdg")):
        for d in parse(path.read_text(), path.name).diagrams:
            name = d.name.id
            report = fdg.report(path, name)
            module = fdg.compile(path, name)
            inputs = random_inputs(module, torch.float32, sizes=dict(report.sizes))
            for t in inputs.values():
                t.requires_grad_(t.is_floating_point())
            measured = measure(module, inputs, args.repeat)
            estimated = report.plan.seconds
            sizes = ", ".join(f"{a} {n}" for a, n in sorted(report.sizes.items()))
            ratio = estimated / measured
            print(f"{name:<20} {sizes:<36} {estimated * 1e3:>8.1f}ms {measured * 1e3:>8.1f}ms {ratio:>9.2f}")
            parts.append(terms(report))
            times.append(measured)
    if args.fit:
        compute, memory, calls = fit(parts, times)
        print(f"fitted factors: compute {compute:.2f}, memory {memory:.2f}, launches {calls:.2f}")
        rates = {k: f"{v / compute:.3g}" for k, v in model.FLOP_RATE.items()} if compute else "(no compute term)"
        print(f"  FLOP_RATE = {rates}")
        print(f"  BANDWIDTH = {model.BANDWIDTH / memory:.3g}" if memory else "  BANDWIDTH: (no memory term)")
        print(f"  LAUNCH = {model.LAUNCH * calls:.3g}")
        after = [float(np.dot(p, (compute, memory, calls))) / t for p, t in zip(parts, times, strict=True)]
        print(f"  estimate / measurement with these: {min(after):.2f} to {max(after):.2f}")


if __name__ == "__main__":
    main()
