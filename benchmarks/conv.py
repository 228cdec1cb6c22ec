"""Channel-wise convolution: fdg vs e3nn 0.6 vs cuEquivariance (naive), side by side in one process.

    .venv/bin/python benchmarks/conv.py                # headline: 32x(0e+1o+2e) x sh(2), 20000 edges
    .venv/bin/python benchmarks/conv.py --lmax 3       # 32x(0e+1o+2e+3o) x sh(3)
    options: [--edges 20000] [--mul 32] [--lmax 2] [--repeat 7] [--warmup 2] [--threads N] [--no-compile] [--no-cue]

``x ⊗ sh(vec, lmax) -> every irrep with l <= lmax`` in mode uvu with external per-edge weights ``R`` (a radial
network's output).  All peers compute the same numbers (outputs and input gradients are checked before timing);
runs are interleaved and only ratios of medians are printed (see ``harness.py``).
"""

from __future__ import annotations

import argparse
import time

from harness import add_timing_arguments, apply_timing_arguments, run_case
from peers import CONV_SOURCE, check_case, conv_case, has_cue

import fdg
import fdg.api  # imported here so that the construction time below excludes module imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=20000)
    parser.add_argument("--mul", type=int, default=32)
    parser.add_argument("--lmax", type=int, default=2)
    add_timing_arguments(parser)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--no-cue", action="store_true", help="leave cuEquivariance out")
    args = parser.parse_args()
    apply_timing_arguments(args)

    start = time.perf_counter()
    fdg.compile(CONV_SOURCE, mul=args.mul, lmax=args.lmax)
    built = time.perf_counter() - start
    case = conv_case(args.mul, args.lmax, args.edges, cue=not args.no_cue)
    check_case(case)
    print(f"checked: {', '.join(case.runners)} give the same outputs and input gradients")
    if not args.no_cue and not has_cue():
        print("cuEquivariance not installed (pip install -e '.[bench]'): no cue row")
    run_case(case, args.repeat, args.warmup, compile_=not args.no_compile, build_seconds=built)


if __name__ == "__main__":
    main()
