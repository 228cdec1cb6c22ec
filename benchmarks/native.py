"""The native channel-wise kernel on its own (docs/performance.md): each of its four products on the lmax-2
convolution, and what a fresh output tensor costs.

    .venv/bin/python benchmarks/native.py [--rows 20000] [--threads 2] [--repeat 7]

Per product (the forward ``y`` and the gradients of ``x``, ``m``, ``w``) it prints the median time of one
``torch.ops.fdg.channelwise`` call and its rate in the model's FLOPs (``fdg.runtime.channelwise_op.work``); then the
time of filling an output-sized tensor that is freshly allocated (page faults) against one that is reused.
"""

from __future__ import annotations

import argparse

import torch
from harness import add_timing_arguments, apply_timing_arguments, describe_machine
from kernels import _median_seconds
from peers import CONV_SOURCE

import fdg
from fdg.runtime import native
from fdg.runtime.channelwise_op import work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000, help="rows (edges)")
    add_timing_arguments(parser)
    args = parser.parse_args()
    apply_timing_arguments(args)
    print(describe_machine())
    print(native.status())
    if native.library() is None:
        return
    module = fdg.compile(CONV_SOURCE)
    table = module.y_cg_table
    sizes = table[4:8].tolist()
    multiply_adds, _ = work(table.tolist())
    n = args.rows
    x, m, w, y = (torch.randn(n, size) for size in sizes)
    operands = {"y (forward)": (x, m, w, None), "x": (None, m, w, y), "m": (x, None, w, y), "w": (x, m, None, y)}
    print(f"\nlmax-2 convolution, {n} rows, {2 * multiply_adds * n / 1e6:.0f} MFLOP per product (the model's count):")
    for name, args_ in operands.items():
        seconds = _median_seconds(
            lambda a=args_: torch.ops.fdg.channelwise(*a, table, sizes, False), args.repeat, args.warmup, calls=5
        )
        print(f"  {name:<12} {seconds * 1e3:7.2f} ms  {2 * multiply_adds * n / seconds / 1e9:5.1f} GFLOP/s")
    reused = torch.empty(n, sizes[3])
    fresh = _median_seconds(lambda: torch.empty(n, sizes[3]).fill_(1.0), args.repeat, args.warmup, calls=5)
    again = _median_seconds(lambda: reused.fill_(1.0), args.repeat, args.warmup, calls=5)
    print(f"\nfilling a [{n}, {sizes[3]}] output: fresh tensor {fresh * 1e3:.2f} ms, reused {again * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
