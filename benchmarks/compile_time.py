"""How long the largest vertices the checker admits take to compile (issue 12).

``--lmax L``: ``couple(a, sh(vec, L)) -> lmax L`` over ``sh(L)``. ``--power NU``: ``power(x, NU)`` over ``--channel``
(one channel's irreps) to ``--out`` (default: the same irreps). Every table is built in this process, so run one case
per invocation.

    .venv/bin/python benchmarks/compile_time.py [--lmax 12]
    .venv/bin/python benchmarks/compile_time.py --power 8 [--channel "0e + 1o + 2e"] [--out "0e + 1o + 2e + 3o + 4e"]
"""

from __future__ import annotations

import argparse
import time

from harness import describe_machine

import fdg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmax", type=int, default=12)
    parser.add_argument("--power", type=int, help="time power of this order instead of a couple")
    parser.add_argument("--channel", default="0e + 1o + 2e", help="the irreps of one channel of power's input")
    parser.add_argument("--out", help="the irreps of one channel of power's output (default: --channel)")
    args = parser.parse_args()
    if args.power is None:
        case = f"lmax {args.lmax}"
        source = f"""diagram HighDegree() {{
    input a   : sh({args.lmax}) over edge
    input vec : 1o over edge
    output y = couple(a, sh(vec, {args.lmax})) -> lmax {args.lmax}
}}"""
    else:
        out = args.out or args.channel
        case = f"power {args.power} over {args.channel} to {out}"
        source = f"""diagram HighOrder(mul = 4) {{
    input x : mul x ({args.channel}) over node
    output y = power(x, {args.power}) -> mul x ({out})
}}"""
    start = time.perf_counter()
    fdg.emit(source)
    emitted = time.perf_counter()
    fdg.compile(source)
    done = time.perf_counter()
    print(describe_machine())
    print(f"{case}: emit {emitted - start:.1f} s, then compile {done - emitted:.1f} s")


if __name__ == "__main__":
    main()
