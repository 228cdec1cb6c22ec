"""TFN convolution, fully connected with per-edge weights (uvw): fdg against e3nn 0.6, side by side in one process.

    .venv/bin/python benchmarks/tfn.py                 # diagrams/tfn.fdg: h 16x(0e+1o+2e), sh(2), 5000 edges
    options: [--edges 5000] [--mul 16] [--lmax 2] [--repeat 7] [--warmup 2] [--threads N] [--no-compile]

``sum(couple(h[src], sh(vec, lmax)) -> mul x (0e + 1o + 2e) [mode = uvw, weights = R], by = dst)``: every path and
pair of channels has its own radial weight per edge.  e3nn's form is ``index_select``, a
``FullyConnectedTensorProduct`` with external per-row weights, ``index_add``.  Outputs and input gradients are
checked equal before timing; runs are interleaved and only ratios of medians are printed (``harness.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from e3nn import o3
from harness import Case, Runner, layer_main
from peers import graph_inputs, irreps_of, sh, summed

import fdg

DIAGRAM = Path(__file__).resolve().parents[1] / "diagrams" / "tfn.fdg"


def tfn_case(mul: int = 16, lmax: int = 2, edges: int = 5000, cue: bool = False, seed: int = 0) -> Case:
    """The TFN convolution over ``edges / 20`` nodes (cuEquivariance has no such case here: ``cue`` is ignored).

    >>> sorted(tfn_case(mul=2, edges=40).runners)
    ['e3nn', 'fdg']
    """
    torch.manual_seed(seed)
    ours = fdg.compile(DIAGRAM, mul=mul, lmax=lmax)
    irreps_h = irreps_of(ours.inputs["h"])
    theirs = o3.FullyConnectedTensorProduct(
        irreps_h,
        o3.Irreps.spherical_harmonics(lmax),
        irreps_of(ours.outputs["out"]),
        shared_weights=False,
        internal_weights=False,
    )
    nodes, h, src, dst, vec, R = graph_inputs(ours, edges)

    def e3nn_tfn() -> torch.Tensor:
        return summed(theirs(h.index_select(0, src), sh(lmax, vec), R), dst, nodes)

    runners: dict[str, Runner] = {"fdg": lambda: ours(h, vec, R, src, dst), "e3nn": e3nn_tfn}
    title = f"TFN conv (uvw, per-edge weights) h {irreps_h}, sh({lmax}), {nodes} nodes, {edges} edges"
    return Case(title, ours, (h, vec, R, src, dst), runners, (h, vec), [h, vec, R])


if __name__ == "__main__":
    layer_main(__doc__, DIAGRAM.read_text(), tfn_case, "edges", 5000, 16, cue=False)
