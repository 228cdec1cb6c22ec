"""What a compiled module's input checks cost (docs/architecture.md): ``fdg.runtime.check_inputs`` alone against the
forward it guards, for NequIP's convolution (diagrams/nequip.fdg) at 20 000 edges and 1 000 nodes.

    .venv/bin/python benchmarks/checks.py [--edges 20000] [--nodes 1000] [--threads 2] [--repeat 7]
"""

from __future__ import annotations

import argparse

import torch
from harness import add_timing_arguments, apply_timing_arguments, describe_machine
from kernels import _median_seconds

import fdg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, default=20000)
    parser.add_argument("--nodes", type=int, default=1000)
    add_timing_arguments(parser)
    args = parser.parse_args()
    apply_timing_arguments(args)
    module = fdg.compile("diagrams/nequip.fdg", diagram="NequIPConv")
    g = torch.Generator().manual_seed(0)
    h = torch.randn(args.nodes, 288, generator=g)
    vec, radial = torch.randn(args.edges, 3, generator=g), torch.randn(args.edges, 480, generator=g)
    src, dst = (torch.randint(0, args.nodes, (args.edges,), generator=g) for _ in range(2))
    inputs = (h, vec, radial, src, dst)

    def forward() -> None:
        with torch.no_grad():
            module(*inputs)

    check = _median_seconds(lambda: fdg.runtime.check_inputs(module, *inputs), args.repeat, args.warmup, calls=200)
    call = _median_seconds(forward, args.repeat, args.warmup, calls=3)
    print(describe_machine())
    print(f"NequIPConv, {args.edges} edges, {args.nodes} nodes: check_inputs {check * 1e6:.1f} us, forward (checks "
          f"included) {call * 1e3:.1f} ms: the checks are {100 * check / call:.3f} % of a call")  # fmt: skip


if __name__ == "__main__":
    main()
