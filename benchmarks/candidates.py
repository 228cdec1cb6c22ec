"""The plan's choices against the clock: every candidate of every choice in diagrams/, estimated and measured.

    .venv/bin/python benchmarks/candidates.py [--repeat 5] [--threads N] [--only NAME]

A choice is a coupling with several lowerings (dense, grouped, grouped+sparse, fused) or a fuse with several
evaluations (trees, the folded tensor).  For each candidate the whole module is compiled with that candidate pinned
(``pin={value: candidate}``, every other choice left to the cost model) and its forward + backward is timed on
random inputs at the report's default sizes, the candidates of one choice interleaved round by round (medians of
``--repeat`` rounds after one warm-up).  Beside each measurement is the report's estimate for that pinned module;
a line per choice says whether the plan's pick is the measured fastest, and by how much it is not.  The box is
shared and noisy: the script prints the load, and differences under about 10% are within its noise.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from calibration import ROOT, random_inputs
from harness import add_timing_arguments, apply_timing_arguments, describe_machine

import fdg
from fdg.frontend.parser import parse

#: measured within this factor of the fastest counts as a tie on this box
NOISE = 1.10


def choices(path: Path) -> Iterator[tuple[str, str, str, list[str]]]:
    """``(diagram, value, the plan's pick, candidates)`` for every choice of the diagrams in ``path``."""
    for d in parse(path.read_text(), path.name).diagrams:
        report = fdg.report(path, d.name.id)
        for value, c in report.choices.items():
            yield d.name.id, value, c.lowering, sorted(c.seconds)
        for value, f in report.fusions.items():
            yield d.name.id, value, f.chosen, list(f.seconds)


def forward_backward(module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    """Seconds of one forward + backward (the loss: the sum of squares of every output)."""
    for leaf in [*inputs.values(), *module.parameters()]:
        leaf.grad = None
    start = time.perf_counter()
    out = module(**inputs)
    sum(o.pow(2).sum() for o in (out if isinstance(out, tuple) else (out,))).backward()
    return time.perf_counter() - start


def measure(path: Path, diagram: str, value: str, candidates: list[str], repeat: int) -> dict[str, float]:
    """Median seconds per candidate, the candidates' modules timed in turn each round on the same inputs."""
    modules = {c: fdg.compile(path, diagram, pin={value: c}) for c in candidates}
    sizes = dict(fdg.report(path, diagram).sizes)
    inputs = random_inputs(next(iter(modules.values())), torch.float32, sizes=sizes)
    for t in inputs.values():
        t.requires_grad_(t.is_floating_point())
    times: dict[str, list[float]] = {c: [] for c in candidates}
    for round_ in range(repeat + 1):
        for c, module in modules.items():
            seconds = forward_backward(module, inputs)
            if round_:
                times[c].append(seconds)
    return {c: statistics.median(t) for c, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser)
    parser.add_argument("--only", help="only the diagrams of this file stem (e.g. segnn)")
    args = parser.parse_args()
    apply_timing_arguments(args)
    print(describe_machine())
    agree = total = 0
    for path in sorted((ROOT / "diagrams").glob(f"{args.only or '*'}.fdg")):
        for diagram, value, pick, candidates in choices(path):
            measured = measure(path, diagram, value, candidates, args.repeat)
            fastest = min(measured, key=measured.__getitem__)
            print(f"{diagram} {value}: the plan picks {pick}")
            for c in candidates:
                estimated = fdg.report(path, diagram, pin={value: c}).plan.seconds
                marks = ("  <- pick" if c == pick else "") + ("  <- measured fastest" if c == fastest else "")
                print(
                    f"  {c:<40} estimated {estimated * 1e3:>8.1f} ms  measured {measured[c] * 1e3:>8.1f} ms"
                    f"  est/meas {estimated / measured[c]:>5.2f}{marks}"
                )
            slower = measured[pick] / measured[fastest]
            total += 1
            agree += slower <= NOISE
            verdict = "agrees" if pick == fastest else f"pick {slower:.2f}x the fastest"
            print(f"  -> {verdict}{' (within noise)' if pick != fastest and slower <= NOISE else ''}")
    print(f"the pick is the measured fastest, or within {NOISE:.2f}x of it, for {agree} of {total} choices")


if __name__ == "__main__":
    main()
