"""Fully connected (uvw) node layer: fdg vs e3nn 0.6 vs cuEquivariance (naive), side by side in one process.

    .venv/bin/python benchmarks/node.py                # 128x(0e+1o+2e) x sh(2) -> 128x(0e+1o+2e), 5000 nodes
    options: [--nodes 5000] [--mul 128] [--lmax 2] [--repeat 7] [--warmup 2] [--threads N] [--no-compile] [--no-cue]

``couple(h, sh(vec, lmax)) -> mul x (0e + 1o + 2e) [mode = uvw]`` with learned weights shared by all nodes
(e3nn's ``FullyConnectedTensorProduct``).  All peers compute the same numbers (outputs and input gradients are
checked before timing); runs are interleaved and only ratios of medians are printed (see ``harness.py``).
"""

from __future__ import annotations

from harness import layer_main
from peers import NODE_SOURCE, node_case

if __name__ == "__main__":
    layer_main(__doc__, NODE_SOURCE, node_case, "nodes", 5000, 128)
