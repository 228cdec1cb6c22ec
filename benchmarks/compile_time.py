"""How long a high-degree coupling takes to compile (issue 12): ``couple(a, sh(vec, L)) -> lmax L`` over ``sh(L)``.

Every 3j table the coupling needs is built in this process, so run one degree per invocation.

    .venv/bin/python benchmarks/compile_time.py [--lmax 12]
"""

from __future__ import annotations

import argparse
import time

from harness import describe_machine

import fdg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmax", type=int, default=12)
    args = parser.parse_args()
    source = f"""diagram HighDegree() {{
    input a   : sh({args.lmax}) over edge
    input vec : 1o over edge
    output y = couple(a, sh(vec, {args.lmax})) -> lmax {args.lmax}
}}"""
    start = time.perf_counter()
    fdg.emit(source)
    emitted = time.perf_counter()
    fdg.compile(source)
    done = time.perf_counter()
    print(describe_machine())
    print(f"lmax {args.lmax}: emit {emitted - start:.1f} s, then compile {done - emitted:.1f} s")


if __name__ == "__main__":
    main()
