"""The layers the benchmarks compare: the fdg module and the same function built with e3nn 0.6 and cuEquivariance.

A benchmark that compares two different functions is worthless, so every builder here returns a :class:`Case` whose
runners all compute the *same* numbers from the same inputs (:func:`check_case` asserts it, outputs and input
gradients alike).  The weight layouts are mapped once when the case is built, never inside a timed call:

* e3nn's ``TensorProduct`` uses fdg's layout and normalization exactly (that is fdg's contract), so its weights are
  fdg's weights unchanged.
* cuEquivariance's ``FullyConnectedTensorProduct`` ("uvw") enumerates paths in the same order, lays out each
  path's weights ``[u, v, w]`` and normalizes each output segment by the fan-in of all paths into it — e3nn's
  ``"element"`` path normalization — so its weights are again the same vector (shape ``[1, numel]``).
* cuEquivariance's ``ChannelWiseTensorProduct`` ("uvu") does not add paths that land on the same irrep: it writes
  one output block per path, sorted by irrep (its O(3) order puts ``2e`` before ``2o``, e3nn's the other way), and
  normalizes every path alone.  Its weights are one ``[u, v]`` block per *sorted* path.  To compute e3nn's function
  the wrapper :class:`CueChannelWise` sums the blocks of each irrep (a reshape and a sum, part of the timed call),
  and the per-edge weights are permuted into cuEquivariance's path order and divided by ``sqrt(paths into that
  irrep)`` — a fixed linear map a radial network absorbs, so it is done when the inputs are made.

cuEquivariance is optional (``pip install -e '.[bench]'``); without it the cases simply have no ``cue`` runner.
"""

from __future__ import annotations

import importlib.util

import torch
from e3nn import o3
from harness import Case, Runner

import fdg

#: an e3nn TensorProduct instruction: (input 1, input 2, output, mode, weighted)
Instruction = tuple[int, int, int, str, bool]

CONV_SOURCE = """
diagram Conv(mul = 32, lmax = 2) {
    input x : mul x sh(lmax) over edge
    input vec : 1o over edge
    input R : weights over edge
    output y = couple(x, sh(vec, lmax)) -> lmax lmax [mode = uvu, weights = R]
}
"""

MESSAGE_SOURCE = """
diagram Message(mul = 32, lmax = 2) {
    input h : mul x sh(lmax) over node
    input src : index edge -> node
    input dst : index edge -> node
    input vec : 1o over edge
    input R : weights over edge
    output y = sum(couple(h[src], sh(vec, lmax)) -> lmax lmax [mode = uvu, weights = R], by = dst)
}
"""

NODE_SOURCE = """
diagram NodeLayer(mul = 128, lmax = 2) {
    input h : mul x (0e + 1o + 2e) over node
    input vec : 1o over node
    output y = couple(h, sh(vec, lmax)) -> mul x (0e + 1o + 2e) [mode = uvw]
}
"""


def has_cue() -> bool:
    """Whether cuequivariance_torch is installed (the ``bench`` extra)."""
    return importlib.util.find_spec("cuequivariance_torch") is not None


def irreps_of(description: str) -> o3.Irreps:
    """e3nn irreps of an fdg wire description such as ``'32x0e+32x1o over edge'``."""
    return o3.Irreps(description.split(" over ")[0])


def sh(lmax: int, vec: torch.Tensor) -> torch.Tensor:
    return o3.spherical_harmonics(list(range(lmax + 1)), vec, normalize=True, normalization="component")


def conv_case(mul: int = 32, lmax: int = 2, edges: int = 20000, cue: bool = True, seed: int = 0) -> Case:
    """The channel-wise convolution ``x ⊗ sh(vec, lmax) -> lmax lmax [mode = uvu, weights = R]`` (per-edge R).

    >>> case = conv_case(mul=4, lmax=2, edges=10, cue=False)
    >>> sorted(case.runners)
    ['e3nn', 'fdg']
    """
    torch.manual_seed(seed)
    ours = fdg.compile(CONV_SOURCE, mul=mul, lmax=lmax)
    irreps_x = irreps_of(ours.inputs["x"])
    irreps_sh = o3.Irreps.spherical_harmonics(lmax)
    irreps_out = irreps_of(ours.outputs["y"])
    instructions = _uvu_instructions(irreps_x, irreps_sh, irreps_out)
    theirs = _uvu(irreps_x, irreps_sh, irreps_out)
    x = irreps_x.randn(edges, -1, requires_grad=True)
    vec = torch.randn(edges, 3, requires_grad=True)
    R = torch.randn(edges, ours.weight_numel["R"], requires_grad=True)
    runners: dict[str, Runner] = {
        "fdg": lambda: ours(x, vec, R),
        "e3nn": lambda: theirs(x, sh(lmax, vec), R),
    }
    leaves = [x, vec, R]
    if cue and has_cue():
        from cue_peers import CueChannelWise

        peer = CueChannelWise(irreps_x, lmax, irreps_out, instructions)
        R_cue = peer.map_weights(R.detach()).requires_grad_()
        runners["cue naive"] = lambda: peer(x, vec, R_cue)
        leaves.append(R_cue)
    title = f"uvu conv {irreps_x} x sh({lmax}) -> {irreps_out}, {edges} edges, per-edge weights"
    return Case(title, ours, (x, vec, R), runners, (x, vec), leaves)


def message_case(mul: int = 32, lmax: int = 2, edges: int = 20000, cue: bool = False, seed: int = 0) -> Case:
    """Whole message passing ``sum(couple(h[src], sh(vec, lmax)) [uvu, weights = R], by = dst)`` over
    ``edges / 20`` nodes; e3nn's form is ``index_select``, ``TensorProduct``, ``index_add`` (cuEquivariance has no
    such case here: ``cue`` is ignored).

    >>> case = message_case(mul=4, lmax=2, edges=40)
    >>> sorted(case.runners)
    ['e3nn', 'fdg']
    """
    torch.manual_seed(seed)
    ours = fdg.compile(MESSAGE_SOURCE, mul=mul, lmax=lmax)
    irreps_h = irreps_of(ours.inputs["h"])
    theirs = _uvu(irreps_h, o3.Irreps.spherical_harmonics(lmax), irreps_of(ours.outputs["y"]))
    nodes, h, src, dst, vec, R = graph_inputs(ours, edges)

    def e3nn_message() -> torch.Tensor:
        return summed(theirs(h.index_select(0, src), sh(lmax, vec), R), dst, nodes)

    runners: dict[str, Runner] = {"fdg": lambda: ours(h, src, dst, vec, R), "e3nn": e3nn_message}
    title = f"message passing sum(couple(h[src], sh({lmax})), by=dst), h {irreps_h}, {nodes} nodes, {edges} edges"
    return Case(title, ours, (h, src, dst, vec, R), runners, (h, vec), [h, vec, R])


def graph_inputs(
    module: torch.nn.Module, edges: int
) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random inputs of a message-passing module (``h`` over node; ``src``, ``dst``, ``vec`` and ``R`` over edge)
    with ``edges / 20`` nodes: ``(nodes, h, src, dst, vec, R)``, the floating ones requiring gradients."""
    nodes = max(1, edges // 20)
    h = irreps_of(module.inputs["h"]).randn(nodes, -1, requires_grad=True)
    src, dst = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,))
    vec = torch.randn(edges, 3, requires_grad=True)
    R = torch.randn(edges, module.weight_numel["R"], requires_grad=True)
    return nodes, h, src, dst, vec, R


def summed(messages: torch.Tensor, dst: torch.Tensor, nodes: int) -> torch.Tensor:
    """e3nn's side of ``sum(..., by = dst)``: the per-edge messages added into their ``nodes`` targets."""
    return messages.new_zeros(nodes, messages.shape[1]).index_add(0, dst, messages)


def _uvu_instructions(irreps_a: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps) -> list[Instruction]:
    """Every channel-wise path of ``irreps_a x irreps_sh`` into ``irreps_out``, weighted, in e3nn's order."""
    return [
        (i1, i2, io, "uvu", True)
        for i1, (m1, ir1) in enumerate(irreps_a)
        for i2, (_, ir2) in enumerate(irreps_sh)
        for io, (mo, ir_out) in enumerate(irreps_out)
        if ir_out in ir1 * ir2 and mo == m1
    ]


def _uvu(irreps_a: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps) -> o3.TensorProduct:
    """e3nn's channel-wise TensorProduct with every path into ``irreps_out``, per-row weights."""
    instructions = _uvu_instructions(irreps_a, irreps_sh, irreps_out)
    return o3.TensorProduct(irreps_a, irreps_sh, irreps_out, instructions, shared_weights=False, internal_weights=False)


def node_case(mul: int = 128, lmax: int = 2, nodes: int = 5000, cue: bool = True, seed: int = 0) -> Case:
    """The fully connected node layer ``couple(h, sh(vec, lmax)) -> mul x (0e+1o+2e) [mode = uvw]``, learned weights.

    >>> case = node_case(mul=4, nodes=10, cue=False)
    >>> sorted(case.runners)
    ['e3nn', 'fdg']
    """
    torch.manual_seed(seed)
    ours = fdg.compile(NODE_SOURCE, mul=mul, lmax=lmax)
    irreps_h = irreps_of(ours.inputs["h"])
    irreps_sh = o3.Irreps.spherical_harmonics(lmax)
    irreps_out = irreps_of(ours.outputs["y"])
    theirs = o3.FullyConnectedTensorProduct(irreps_h, irreps_sh, irreps_out)
    weight = next(iter(ours.parameters()))
    with torch.no_grad():
        theirs.weight.copy_(weight)
    h = irreps_h.randn(nodes, -1, requires_grad=True)
    vec = torch.randn(nodes, 3, requires_grad=True)
    runners: dict[str, Runner] = {"fdg": lambda: ours(h, vec), "e3nn": lambda: theirs(h, sh(lmax, vec))}
    leaves = [h, vec, weight, theirs.weight]
    if cue and has_cue():
        from cue_peers import CueFullyConnected

        peer = CueFullyConnected(irreps_h, lmax, irreps_out, weight.detach())
        runners["cue naive"] = lambda: peer(h, vec)
        leaves.extend(peer.parameters())
    title = f"uvw node layer {irreps_h} x sh({lmax}) -> {irreps_out}, {nodes} nodes, learned weights"
    gemm, a, w = same_gemm(theirs, nodes)
    leaves += [a, w]
    return Case(title, ours, (h, vec), runners, (h, vec), leaves, {gemm: lambda: torch.mm(a, w)})


def same_gemm(tp: o3.TensorProduct, rows: int) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The roofline of a fully connected product: one ``torch.mm`` ``[R, K] @ [K, N]`` of as many FLOPs as its weight
    contractions (``2 rows (2 l3 + 1) mul_in mul_out`` per path), with ``K`` the largest fan-in of an output irrep."""
    flops, fan_in = 0, {}
    for ins in tp.instructions:
        mul_in, mul_out, dim = (
            tp.irreps_in1[ins.i_in1].mul,
            tp.irreps_out[ins.i_out].mul,
            tp.irreps_out[ins.i_out].ir.dim,
        )
        flops += 2 * rows * dim * mul_in * mul_out
        fan_in[ins.i_out] = fan_in.get(ins.i_out, 0) + mul_in
    n = max(tp.irreps_out[i].mul for i in fan_in)
    k = max(fan_in.values())
    r = max(1, round(flops / (2 * k * n)))
    a, w = torch.randn(r, k, requires_grad=True), torch.randn(k, n, requires_grad=True)
    return f"torch.mm [{r}x{k}] @ [{k}x{n}] (same FLOPs)", a, w


def check_case(case: Case, rtol: float = 1e-5) -> None:
    """Assert that every runner gives fdg's output and fdg's input gradients (of ``out.pow(2).sum()``).

    Tolerances are relative to the largest entry of fdg's tensor, so they mean the same for any size.
    """

    def outputs_and_grads(run: Runner) -> list[torch.Tensor]:
        out = run()
        return [out.detach(), *torch.autograd.grad(out.pow(2).sum(), case.shared)]

    expected = outputs_and_grads(case.runners["fdg"])
    for name, run in case.runners.items():
        for want, got in zip(expected, outputs_and_grads(run), strict=True):
            scale = want.abs().max().item()
            torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * scale, msg=lambda m, n=name: f"{n}: {m}")
