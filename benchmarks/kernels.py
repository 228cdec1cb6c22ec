"""The CPU facts behind the grouped lowering's remaining time (docs/performance.md), as ratios to a plain copy.

    .venv/bin/python benchmarks/kernels.py [--rows 4096] [--threads 1] [--repeat 7]

Each kernel runs on the shapes of one slice of the lmax-2 convolution (rows x 32 channels x an irrep of dimension
3 or 5) and is timed against copying a tensor of the same size; a ratio of 3 means three copies' time.  The
batched matmul line prints its rate instead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from harness import add_timing_arguments, apply_timing_arguments, describe_machine

from fdg.runtime.grouped import permute_columns, transposition


def _median_seconds(run: Callable[[], object], repeat: int, warmup: int, calls: int = 50) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4096, help="rows of one slice")
    add_timing_arguments(parser)
    args = parser.parse_args()
    apply_timing_arguments(args)
    print(describe_machine())
    n, mul = args.rows, 32
    for dim in (3, 5):
        a = torch.randn(n, dim, mul)
        w = torch.randn(n, 1, mul)
        flat = torch.randn(n, mul * dim)
        index = transposition(((mul, dim),))
        inverse = torch.argsort(index)
        copy = _median_seconds(a.clone, args.repeat, args.warmup)
        kernels: dict[str, Callable[[], object]] = {
            f"same-shape product [n, {dim}, {mul}]": lambda a=a: a * a,
            f"product broadcast over the middle, w[n, 1, {mul}] * a[n, {dim}, {mul}]": lambda a=a, w=w: w * a,
            f"transpose(1, 2).contiguous() of [n, {mul}, {dim}]": lambda f=flat, d=dim: (
                f.view(n, mul, d).transpose(1, 2).contiguous()
            ),
            "the same by one gather (fdg.runtime.permute_columns)": lambda f=flat, i=inverse, j=index: permute_columns(
                f, i, j
            ),
        }
        print(f"\nirrep dimension {dim}, {n} rows; time / time of a plain copy of the same size:")
        for name, run in kernels.items():
            print(f"  {name:<72} {_median_seconds(run, args.repeat, args.warmup) / copy:6.2f}")
    print("\nbatched matmuls of one slice, [n, d_out, width] @ [n, width, 32]:")
    for d_out, width in ((1, 3), (3, 6), (5, 5), (5, 10)):
        left, right = torch.randn(n, d_out, width), torch.randn(n, width, mul)
        seconds = _median_seconds(lambda left=left, right=right: torch.bmm(left, right), args.repeat, args.warmup)
        print(f"  [{d_out}x{width}] @ [{width}x{mul}]: {2 * n * d_out * width * mul / seconds / 1e9:5.1f} GFLOP/s")


if __name__ == "__main__":
    main()
