"""Whole message passing: fdg's one kernel call against e3nn's gather, TensorProduct and scatter, in one process.

    .venv/bin/python benchmarks/message_passing.py     # h 32x(0e+1o+2e), sh(2), 20000 edges, 1000 nodes
    options: [--edges 20000] [--mul 32] [--lmax 2] [--repeat 7] [--warmup 2] [--threads N] [--no-compile]

``sum(couple(h[src], sh(vec, lmax)) -> lmax lmax [mode = uvu, weights = R], by = dst)`` with per-edge weights ``R``.
fdg reads ``h`` through ``src`` and sums into ``dst`` inside its native kernel (no ``[edge, features]`` tensor);
e3nn's form is ``index_select``, ``TensorProduct``, ``index_add``.  Outputs and input gradients are checked equal
before timing; runs are interleaved and only ratios of medians are printed (see ``harness.py``).
"""

from __future__ import annotations

from harness import layer_main
from peers import MESSAGE_SOURCE, message_case

if __name__ == "__main__":
    layer_main(__doc__, MESSAGE_SOURCE, message_case, "edges", 20000, 32)
