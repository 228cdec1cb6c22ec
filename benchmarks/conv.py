"""Channel-wise convolution, fdg vs e3nn 0.6: forward + backward, side by side in one process.

    .venv/bin/python benchmarks/conv.py [--edges 20000] [--mul 32] [--lmax 2] [--repeat 7]

The two layers compute the same numbers (checked before timing).  Runs are interleaved (fdg, e3nn,
fdg, e3nn, ...) and the median of each is reported, with the ratio e3nn / fdg.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from e3nn import o3

import fdg
import fdg.api  # (imported here so that the construction time below excludes module imports)

SOURCE = """
diagram Conv(mul = 32, lmax = 2) {{
    input x : mul x sh(lmax) over edge
    input vec : 1o over edge
    input R : weights over edge
    output y = couple(x, sh(vec, lmax)) -> lmax lmax [mode = uvu, weights = R]
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=20000)
    parser.add_argument("--mul", type=int, default=32)
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)

    start = time.perf_counter()
    ours = fdg.compile(SOURCE.format(), mul=args.mul, lmax=args.lmax)
    built = time.perf_counter() - start

    irreps_x = o3.Irreps([(args.mul, (l, (-1) ** l)) for l in range(args.lmax + 1)])
    irreps_sh = o3.Irreps.spherical_harmonics(args.lmax)
    irreps_out = o3.Irreps(ours.outputs["y"].split(" over ")[0])
    instructions = [
        (i1, i2, io, "uvu", True)
        for i1, (m1, ir1) in enumerate(irreps_x)
        for i2, (_, ir2) in enumerate(irreps_sh)
        for io, (mo, ir_out) in enumerate(irreps_out)
        if ir_out in ir1 * ir2 and mo == m1
    ]
    theirs = o3.TensorProduct(
        irreps_x, irreps_sh, irreps_out, instructions, shared_weights=False, internal_weights=False
    )

    x = irreps_x.randn(args.edges, -1, requires_grad=True)
    vec = torch.randn(args.edges, 3, requires_grad=True)
    R = torch.randn(args.edges, theirs.weight_numel, requires_grad=True)

    def run_ours() -> torch.Tensor:
        return ours(x, vec, R)

    def run_theirs() -> torch.Tensor:
        return theirs(x, o3.spherical_harmonics(irreps_sh, vec, True, normalization="component"), R)

    torch.testing.assert_close(run_ours(), run_theirs(), atol=1e-4, rtol=1e-4)

    def timed(f) -> float:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        f().pow(2).sum().backward()
        return time.perf_counter() - start

    for f in (run_ours, run_theirs):  # warm-up
        timed(f)
    times: dict[str, list[float]] = {"fdg": [], "e3nn": []}
    for _ in range(args.repeat):
        times["fdg"].append(timed(run_ours))
        times["e3nn"].append(timed(run_theirs))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"uvu conv {irreps_x} x sh({args.lmax}) -> {irreps_out}, {args.edges} edges, "
        f"{torch.get_num_threads()} threads, forward+backward, median of {args.repeat}"
    )
    print(f"  fdg construction: {built * 1e3:.0f} ms")
    print(
        f"  time fdg / e3nn: {med['fdg'] / med['e3nn']:.2f}   (fdg is {med['e3nn'] / med['fdg']:.2f}x as fast as e3nn)"
    )


if __name__ == "__main__":
    main()
