"""Channel-wise convolution: fdg vs e3nn 0.6 vs cuEquivariance (naive), side by side in one process.

    .venv/bin/python benchmarks/conv.py                # headline: 32x(0e+1o+2e) x sh(2), 20000 edges
    .venv/bin/python benchmarks/conv.py --lmax 3       # 32x(0e+1o+2e+3o) x sh(3)
    options: [--edges 20000] [--mul 32] [--lmax 2] [--repeat 7] [--warmup 2] [--threads N] [--no-compile] [--no-cue]

``x ⊗ sh(vec, lmax) -> every irrep with l <= lmax`` in mode uvu with external per-edge weights ``R`` (a radial
network's output).  All peers compute the same numbers (outputs and input gradients are checked before timing);
runs are interleaved and only ratios of medians are printed (see ``harness.py``).
"""

from __future__ import annotations

from harness import layer_main
from peers import CONV_SOURCE, conv_case

if __name__ == "__main__":
    layer_main(__doc__, CONV_SOURCE, conv_case, "edges", 20000, 32)
