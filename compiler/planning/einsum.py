"""The dense lowering's contractions: every CG path (or linear block) as one einsum and its pairwise order.

A path of ``couple`` is ``einsum(spec, a_block, b_block, cg, weights)`` over named roles; its pairwise order comes
from ``opt_einsum.contract_path`` (FLOPs and intermediate sizes, :data:`_FLOPS_AND_SIZE`) on the path's shapes at
:data:`REPRESENTATIVE_BATCH` rows.  It does not depend on the batch size for these networks, where the batch index
is carried by every data operand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import opt_einsum

from fdg import ir

#: batch size used to choose contraction orders
REPRESENTATIVE_BATCH = 1024
#: the order's measure: FLOPs plus 64 per element of every intermediate (opt_einsum's "combo").  Autograd keeps each
#: intermediate for the backward, and force training differentiates twice, so an intermediate costs its memory
#: traffic several times over.  The FLOP-optimal order of a ``uvw`` couple with 3 species scalars builds a
#: ``[nodes, 128, 128]`` weight per node; this one does not (measured: a mace-torch-sized MACE's training step on
#: 297 atoms went from 1010 to 810 ms, benchmarks/mace_model.py).
_FLOPS_AND_SIZE = opt_einsum.DynamicProgramming(minimize="combo")


@dataclass(frozen=True)
class Pairwise:
    """``result = einsum(spec, operands[left], operands[right])``; the result is appended to the operand list."""

    left: int
    right: int
    spec: str


@dataclass(frozen=True)
class Contraction:
    """One CG path (or linear block): a full einsum over named roles and its pairwise order."""

    roles: tuple[str, ...]  # operand roles: "x1", "x2", "cg", "w" (couple) or "x", "w" (linear)
    spec: str  # the whole einsum, e.g. "zui,zvj,ijk,uv->zuk"
    steps: tuple[Pairwise, ...]
    i_in: tuple[int, ...]  # indices into the input irreps lists, one per data operand
    i_out: int
    cg: str | None  # CG buffer name
    alpha: float
    weight_offset: int
    weight_shape: tuple[int, ...]


# einsum letters: z batch; u, v, w channels; i, j, k the m indices of a, b and the output
_COUPLE = {
    "uvw": ("zui", "zvj", "uvw", "zwk"),
    "uvu": ("zui", "zvj", "uv", "zuk"),
    "uvv": ("zui", "zvj", "uv", "zvk"),
    "uuw": ("zui", "zuj", "uw", "zwk"),
    "uuu": ("zui", "zuj", "u", "zuk"),
    "uvuv": ("zui", "zvj", "uv", "zuvk"),
}


def _pairwise(inputs: list[str], output: str, shapes: list[tuple[int, ...]]) -> tuple[Pairwise, ...]:
    """The pairwise einsums of opt_einsum's optimal order for ``inputs -> output``."""
    spec = ",".join(inputs) + "->" + output
    path, _ = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=_FLOPS_AND_SIZE)
    if any(len(pair) != 2 for pair in path):  # a sum over one operand's own index: the FLOP-optimal order has none
        path, _ = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize="optimal")
    live = list(inputs)
    steps = []
    for pair in path:
        left, right = sorted(pair)
        a, b = live[left], live[right]
        rest = [t for n, t in enumerate(live) if n not in (left, right)]
        keep = set("".join(rest)) | set(output)
        result = output if len(live) == 2 else "".join(c for c in dict.fromkeys(a + b) if c in keep)
        steps.append(Pairwise(left, right, f"{a},{b}->{result}"))
        live = [*rest, result]
    return tuple(steps)


def couple_contractions(op: ir.Couple, a: ir.Feature, b: ir.Feature, batched_weights: bool) -> tuple[Contraction, ...]:
    # without weights, channels the output does not keep are summed, as in e3nn ("ijk,zuvij->zuk")
    x1, x2, w, out = _COUPLE[op.mode]
    weighted = op.weights.kind != "none"
    if weighted and batched_weights:
        w = "z" + w
    if op.mode == "uuw" and not weighted:
        out = "zk"  # e3nn: unweighted uuw sums over the shared channel
    result = []
    offset = 0
    for p in op.paths:
        (m1, ir1), (m2, ir2), (m3, ir3) = a.irreps[p.i1], b.irreps[p.i2], op.irreps_out[p.i_out]
        dims = {"z": REPRESENTATIVE_BATCH, "u": m1, "v": m2, "w": m3, "i": ir1.dim, "j": ir2.dim, "k": ir3.dim}
        roles = ["x1", "x2", "cg"] + (["w"] if weighted else [])
        inputs = [x1, x2, "ijk"] + ([w] if weighted else [])
        shapes = [tuple(dims[c] for c in t) for t in inputs]
        cg = f"cg_{ir1.l}_{ir2.l}_{ir3.l}"
        result.append(
            Contraction(
                tuple(roles),
                ",".join(inputs) + "->" + out,
                _pairwise(inputs, out, shapes),
                (p.i1, p.i2),
                p.i_out,
                cg,
                p.alpha,
                offset,
                p.shape,
            )
        )
        offset += math.prod(p.shape)
    return tuple(result)


def linear_contractions(op: ir.Linear, x: ir.Feature, batched_weights: bool) -> tuple[Contraction, ...]:
    w = "zuw" if batched_weights else "uw"
    result = []
    offset = 0
    for p in op.paths:
        shape = (x.irreps[p.i_in].mul, op.irreps_out[p.i_out].mul)
        spec = f"zui,{w}->zwi"
        result.append(
            Contraction(("x", "w"), spec, (Pairwise(0, 1, spec),), (p.i_in,), p.i_out, None, p.alpha, offset, shape)
        )
        offset += math.prod(shape)
    return tuple(result)
