"""Fully connected (uvw) node layer: fdg vs e3nn 0.6 vs cuEquivariance (naive), side by side in one process.

    .venv/bin/python benchmarks/node.py                # 128x(0e+1o+2e) x sh(2) -> 128x(0e+1o+2e), 5000 nodes
    options: [--nodes 5000] [--mul 128] [--lmax 2] [--repeat 7] [--warmup 2] [--threads N] [--no-compile] [--no-cue]

``couple(h, sh(vec, lmax)) -> mul x (0e + 1o + 2e) [mode = uvw]`` with learned weights shared by all nodes
(e3nn's ``FullyConnectedTensorProduct``).  All peers compute the same numbers (outputs and input gradients are
checked before timing); runs are interleaved and only ratios of medians are printed (see ``harness.py``).
"""

from __future__ import annotations

import argparse
import time

from harness import add_timing_arguments, apply_timing_arguments, run_case
from peers import NODE_SOURCE, check_case, has_cue, node_case

import fdg
import fdg.api  # imported here so that the construction time below excludes module imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--mul", type=int, default=128)
    parser.add_argument("--lmax", type=int, default=2)
    add_timing_arguments(parser)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--no-cue", action="store_true", help="leave cuEquivariance out")
    args = parser.parse_args()
    apply_timing_arguments(args)

    start = time.perf_counter()
    fdg.compile(NODE_SOURCE, mul=args.mul, lmax=args.lmax)
    built = time.perf_counter() - start
    case = node_case(args.mul, args.lmax, args.nodes, cue=not args.no_cue)
    check_case(case)
    print(f"checked: {', '.join(case.runners)} give the same outputs and input gradients")
    if not args.no_cue and not has_cue():
        print("cuEquivariance not installed (pip install -e '.[bench]'): no cue row")
    run_case(case, args.repeat, args.warmup, compile_=not args.no_compile, build_seconds=built)


if __name__ == "__main__":
    main()
