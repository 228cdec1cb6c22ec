"""The fusion block over a neighbourhood: fdg's fuse against e3nn's two-product form, and fdg's own couple.

    .venv/bin/python benchmarks/edge_fusion.py         # h 32x(0e+1o), sh(3), 1000 nodes, 20 000 edges
    options: [--edges 20000] [--mul 32] [--lmax 3] [--repeat 7] [--warmup 2] [--threads N] [--no-compile]

``sum(fuse(h[src], h[dst], sh(vec, lmax)) -> mul x (0e + 1o) [weights = R], by = dst)`` with per-edge weights on
the paths of the tree ``((h[src], h[dst]), Y)``.  e3nn's form (issue 13): a channel-wise ``uuu`` TensorProduct of
``h[src]`` and ``h[dst]`` keeping one output block per instruction, a ``uvu`` TensorProduct of that with ``Y``
under the per-edge weights, and ``index_add``.  The two normalize their paths differently, so e3nn's weights are
fdg's permuted and scaled per path (a fixed linear map a radial network absorbs, found once by probing both with
one-hot weights and done when the inputs are made).  Outputs and input gradients are checked equal before timing.
The row ``fdg couple (bound)`` is ``sum(couple(h[src], Y) -> ... [mode = uvu, weights = R], by = dst)`` at the same
sizes: not the same function, the issue's yardstick for the fuse (at most 3x its time).
"""

from __future__ import annotations

import copy

import torch
from e3nn import o3
from harness import Case, Runner, layer_main
from peers import MESSAGE_SOURCE, graph_inputs, irreps_of, sh, summed

import fdg

SOURCE = """
diagram EdgeFusion(mul = 32, lmax = 3) {
    input h : mul x (0e + 1o) over node
    input src : index edge -> node
    input dst : index edge -> node
    input vec : 1o over edge
    input R : weights over edge
    output y = sum(fuse(h[src], h[dst], sh(vec, lmax)) -> mul x (0e + 1o) [weights = R], by = dst)
}
"""

#: the same fuse on rows, without gather and sum: what the weight map is probed with
PROBE = """
diagram Probe(mul = 32, lmax = 3) {
    input a : mul x (0e + 1o)
    input b : mul x (0e + 1o)
    input vec : 1o
    input R : weights
    output y = fuse(a, b, sh(vec, lmax)) -> mul x (0e + 1o) [weights = R]
}
"""


def two_products(irreps_h: o3.Irreps, lmax: int, irreps_out: o3.Irreps) -> tuple[o3.TensorProduct, o3.TensorProduct]:
    """e3nn's form: ``h ⊗ h`` channel-wise with one block per instruction, then ``uvu`` with the harmonics."""
    mid, first = [], []
    for i1, (mul, ir1) in enumerate(irreps_h):
        for i2, (_, ir2) in enumerate(irreps_h):
            for ir in ir1 * ir2:
                first.append((i1, i2, len(mid), "uuu", False))
                mid.append((mul, ir))
    tp1 = o3.TensorProduct(irreps_h, irreps_h, o3.Irreps(mid), first)
    irreps_sh = o3.Irreps.spherical_harmonics(lmax)
    second = [
        (i1, i2, io, "uvu", True)
        for i1, (_, ir1) in enumerate(tp1.irreps_out)
        for i2, (_, ir2) in enumerate(irreps_sh)
        for io, (_, ir_out) in enumerate(irreps_out)
        if ir_out in ir1 * ir2
    ]
    tp2 = o3.TensorProduct(tp1.irreps_out, irreps_sh, irreps_out, second, shared_weights=False, internal_weights=False)
    return tp1, tp2


def weight_map(mul: int, lmax: int, tp1: o3.TensorProduct, tp2: o3.TensorProduct) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, scale)`` with ``R_e3nn = R[:, index] * scale`` computing fdg's fuse: each one-hot weight's output
    column of fdg matched to the e3nn column it is proportional to (float64, one random row)."""
    probe = fdg.compile(PROBE, mul=mul, lmax=lmax).double()
    n = probe.weight_numel["R"]
    assert n == tp2.weight_numel, (n, tp2.weight_numel)
    g = torch.Generator().manual_seed(1)
    eye = torch.eye(n, dtype=torch.float64)
    first, second = copy.deepcopy(tp1).double(), copy.deepcopy(tp2).double()
    ours, theirs = [], []
    for _ in range(4):  # random inputs, side by side: one irrep of the output cannot tell paths into it apart
        a, b = (torch.randn(1, tp1.irreps_in1.dim, generator=g, dtype=torch.float64).expand(n, -1) for _ in "ab")
        vec = torch.randn(1, 3, generator=g, dtype=torch.float64).expand(n, -1)
        ours.append(probe(a, b, vec, eye))  # row j: the output of one-hot weight j
        theirs.append(second(first(a, b), sh(lmax, vec), eye))
    ours, theirs = torch.cat(ours, 1), torch.cat(theirs, 1)
    cos = (ours / ours.norm(dim=1, keepdim=True)) @ (theirs / theirs.norm(dim=1, keepdim=True)).T
    match = cos.abs().argmax(0)  # e3nn weight q computes fdg's weight match[q], times a constant
    assert torch.allclose(cos.abs().max(0).values, torch.ones(n, dtype=torch.float64)), "no one-to-one weight map"
    assert sorted(match.tolist()) == list(range(n)), "no one-to-one weight map"
    scale = (ours[match] * theirs).sum(1) / theirs.pow(2).sum(1)
    return match, scale.to(torch.get_default_dtype())


def edge_fusion_case(mul: int = 32, lmax: int = 3, edges: int = 20000, cue: bool = False, seed: int = 0) -> Case:
    """The fusion block over ``edges / 20`` nodes against e3nn's two-product form (no cuEquivariance peer: ``cue``
    is ignored).

    >>> sorted(edge_fusion_case(mul=2, lmax=1, edges=40).runners)
    ['e3nn', 'fdg']
    """
    torch.manual_seed(seed)
    ours = fdg.compile(SOURCE, mul=mul, lmax=lmax)
    irreps_h = irreps_of(ours.inputs["h"])
    tp1, tp2 = two_products(irreps_h, lmax, irreps_of(ours.outputs["y"]))
    index, scale = weight_map(mul, lmax, tp1, tp2)
    nodes, h, src, dst, vec, R = graph_inputs(ours, edges)
    R_e3nn = (R.detach()[:, index] * scale).requires_grad_()

    def e3nn_fusion() -> torch.Tensor:
        return summed(tp2(tp1(h.index_select(0, src), h.index_select(0, dst)), sh(lmax, vec), R_e3nn), dst, nodes)

    couple = fdg.compile(MESSAGE_SOURCE.replace("mul x sh(lmax)", "mul x (0e + 1o)"), mul=mul, lmax=lmax)
    R_couple = torch.randn(edges, couple.weight_numel["R"], requires_grad=True)
    runners: dict[str, Runner] = {"fdg": lambda: ours(h, src, dst, vec, R), "e3nn": e3nn_fusion}
    bounds: dict[str, Runner] = {"fdg couple (bound)": lambda: couple(h, src, dst, vec, R_couple)}
    title = f"edge fusion sum(fuse(h[src], h[dst], sh({lmax})), by=dst), h {irreps_h}, {nodes} nodes, {edges} edges"
    return Case(title, ours, (h, src, dst, vec, R), runners, (h, vec), [h, vec, R, R_e3nn, R_couple], bounds)


if __name__ == "__main__":
    layer_main(__doc__, SOURCE, edge_fusion_case, "edges", 20000, 32, lmax=3, cue=False)
