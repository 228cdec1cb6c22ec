"""fuse: every way fdg can evaluate a fusion vertex, timed side by side, next to the cost model's estimates.

    .venv/bin/python benchmarks/fusion.py              # SPEC FusionBlock: 16x(0e+1o+2e) three times, 10 000 rows
    .venv/bin/python benchmarks/fusion.py --case sh    # fuse(h, Y1, Y2): two multiplicity-one inputs
    .venv/bin/python benchmarks/fusion.py --threads 1  # robust on busy CPUs

Rows: the plan's choice (``fdg``), every candidate the plan priced (each tree, the folded tensor, in the form the
cost model prefers for it), and a naive reference: one einsum chain per path along the left-to-right tree with the
dense 3j tensors, paths enumerated independently of fdg's trees (``fdg.runtime.fusion_reference.naive_fuse``, also
the reference of ``tests/planning/test_fuse.py``).
All rows are first checked to compute the same numbers.  Printed: for each row the cost model's estimate over the
plan's, then the measured time over the plan's (interleaved medians, ``harness.py``).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from harness import add_timing_arguments, apply_timing_arguments, describe_machine, interleaved

import fdg
from fdg.runtime import Irreps
from fdg.runtime.fusion_reference import naive_fuse

BLOCK = """diagram FusionBlock(mul = 16) {
    input a : mul x (0e + 1o + 2e)
    input b : mul x (0e + 1o + 2e)
    input c : mul x (0e + 1o + 2e)
    output y = fuse(a, b, c) -> mul x (0e + 1o + 2e)
}"""

SH = """diagram FusionSH(mul = 16) {
    input h : mul x (0e + 1o + 2e)
    input u : 0e + 1o + 2e
    input v : 0e + 1o + 2e
    output y = fuse(h, u, v) -> mul x (0e + 1o + 2e)
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["block", "sh"], default="block")
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--mul", type=int, default=16)
    add_timing_arguments(parser)
    args = parser.parse_args()
    apply_timing_arguments(args)
    from fdg.codegen import emit_module
    from fdg.planning.pin import Pin
    from fdg.planning.plan import make_plan
    from fdg.runtime import load_source

    source = BLOCK if args.case == "block" else SH
    plan = fdg.build(source, mul=args.mul).plan
    (node,) = plan.fusions
    choice = plan.fusions[node].choice
    choice_value = plan.names[node]
    module = fdg.compile(source, mul=args.mul)
    modules = {"fdg": module}
    for candidate in choice.seconds:
        pinned = make_plan(plan.diagram, {choice_value: Pin(candidate)})
        variant = load_source(emit_module(pinned, "bench"), plan.diagram.name)()
        variant.load_state_dict(dict(module.named_parameters()), strict=False)
        modules[candidate] = variant
    names = list(module.inputs)
    irreps = [Irreps(module.inputs[k].split(" over ")[0]) for k in names]
    out = Irreps(module.outputs["y"].split(" over ")[0])
    inputs = [torch.randn(args.rows, i.dim, requires_grad=True) for i in irreps]
    (weight,) = module.parameters()
    paths = weight.numel() // args.mul

    def naive() -> torch.Tensor:
        return naive_fuse(inputs, irreps, out, weight.view(paths, args.mul))

    runners = {name: (lambda m=m: m(*inputs)) for name, m in modules.items()}
    want = runners["fdg"]().detach()
    for name, run in [*runners.items(), ("naive per-path einsums", naive)]:
        got = run().detach()
        assert (got - want).abs().max() <= 1e-4 * want.abs().max(), name
    runners["naive per-path einsums"] = naive
    print(f"{plan.diagram.name}(mul={args.mul}), {args.rows} rows, {paths} paths; checked: every row computes the same")
    print(f"  {describe_machine()}")
    print(f"  plan: {choice.chosen}")
    leaves = [*inputs, *(p for m in modules.values() for p in m.parameters())]
    times = interleaved(runners, leaves, args.repeat, args.warmup, backward=True)
    base = statistics.median(times["fdg"])
    chosen = choice.seconds[choice.chosen]
    print(f"  {'':40} {'estimate / fdg':>15} {'measured / fdg':>15}   forward+backward, median of {args.repeat}")
    for name, found in times.items():
        estimate = f"{choice.seconds[name] / chosen:.2f}" if name in choice.seconds else "-"
        print(f"  {name:40} {estimate:>15} {statistics.median(found) / base:>15.2f}")
    print(f"  fdg itself: {base * 1e3:.0f} ms measured, {chosen * 1e3:.0f} ms estimated at {choice.rows} rows")


if __name__ == "__main__":
    main()
