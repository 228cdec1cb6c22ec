"""The cost model: FLOPs, bytes and intermediate sizes of every step of a plan, forward and backward.

Costs are *per row* of a batch axis (``edge``, ``node``, ...) so that one plan can be priced at any sizes: a
:class:`Step` says how much work one row costs, and :func:`evaluate` multiplies by the sizes.  Three kinds of tensor
take part and are treated differently: constants (CG tensors: no batch axis, no gradient), weights (learned: no
batch axis but a gradient; external: batched) and data (batched, with gradients).

Conventions (those of ``opt_einsum``): a multiply-add is 2 FLOPs, a product with nothing summed is 1 FLOP.  Bytes
count the batched tensors a step reads and writes, at the element size of float32 (4 bytes); a step run on slices of
rows (``chunk``) keeps its intermediates in cache, so only its inputs and outputs count.  The backward of a
contraction computes one gradient per operand that needs one, each costing about what the forward costs.

The time estimate that ranks plans is ``flops / FLOP_RATE[lowering] + bytes / BANDWIDTH + launches * LAUNCH``, with
constants measured on the 2-core CPU of the benchmarks (``benchmarks/``): small batched matmuls reach a fraction of
the rate of a large einsum, and every torch call costs a few microseconds.  They rank plans; they are not a promise
of absolute times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: bytes per element (float32)
ELEMENT = 4
#: effective FLOP/s per lowering on the benchmark CPU (2 threads); these three constants are calibrated against
#: the measured forward + backward time of every diagram of diagrams/ (``benchmarks/calibration.py --fit``, session
#: 21: one factor for the rates, one for the bandwidth, one for the launches, chosen for the smallest worst-case
#: ratio; a rerun then gave 0.65-1.78 of the measurement for every diagram, docs/performance.md); "batched" (einsums
#: between two per-row operands, small bmms over the rows) was set in session 23 from the diagrams with per-edge uvw
#: weights (TFN, SE(3)-Transformer, Allegro), which the dense rate had made 0.45-0.64 of their measured times
FLOP_RATE = {
    "dense": 10.4e9,
    "batched": 4.0e9,
    "grouped": 7.8e9,
    "native": 26e9,
    "mm": 39e9,
    "sparse": 5.2e9,
    "elementwise": 2.6e9,
    "gather": 2.6e9,
    "scatter": 1.3e9,
}
#: effective memory bandwidth, bytes/s
BANDWIDTH = 8.5e9
#: seconds per torch call (dispatch, allocation), forward or backward
LAUNCH = 12e-6


@dataclass(frozen=True)
class Step:
    """One torch call (or a few fused into one line) of the generated forward, priced per row of ``axis``."""

    value: str  # the value it helps compute
    what: str  # the einsum, or the kernel and its shapes
    lowering: str  # dense | batched | grouped | native | mm | sparse | elementwise | gather | scatter
    axis: str  # batch axis of the rows; "" for work independent of the batch (weights times CG)
    flops: float  # forward, per row
    bytes: float  # forward, per row
    out: int  # elements of the result, per row
    backward_flops: float
    backward_bytes: float
    launches: int = 1  # torch calls, per slice of rows when chunked
    chunk: int = 0  # rows per slice; 0: the whole batch at once


@dataclass(frozen=True)
class Totals:
    flops: float
    bytes: float
    backward_flops: float
    backward_bytes: float
    largest: float  # bytes of the largest intermediate
    kept: float  # bytes of all intermediates (what autograd keeps for backward)
    seconds: float  # estimated forward + backward time


def rows(step: Step, sizes: Mapping[str, int]) -> int:
    """How many rows a step processes at the given axis sizes (1 for batch-independent work)."""
    return sizes.get(step.axis, 1) if step.axis else 1


def launches(step: Step, sizes: Mapping[str, int]) -> int:
    n = rows(step, sizes)
    return step.launches * (max(1, math.ceil(n / step.chunk)) if step.chunk else 1)


def seconds(step: Step, sizes: Mapping[str, int]) -> float:
    """Estimated forward + backward time of one step."""
    n = rows(step, sizes)
    compute = (step.flops + step.backward_flops) * n / FLOP_RATE[step.lowering]
    memory = (step.bytes + step.backward_bytes) * n / BANDWIDTH
    return compute + memory + 3 * launches(step, sizes) * LAUNCH  # backward: about two calls per forward call


def evaluate(steps: tuple[Step, ...], sizes: Mapping[str, int]) -> Totals:
    """Totals of a list of steps at the given axis sizes."""
    flops = sum(s.flops * rows(s, sizes) for s in steps)
    moved = sum(s.bytes * rows(s, sizes) for s in steps)
    bflops = sum(s.backward_flops * rows(s, sizes) for s in steps)
    bmoved = sum(s.backward_bytes * rows(s, sizes) for s in steps)
    sizes_out = [s.out * (min(rows(s, sizes), s.chunk) if s.chunk else rows(s, sizes)) * ELEMENT for s in steps]
    kept = sum(s.out * rows(s, sizes) * ELEMENT for s in steps)
    time = sum(seconds(s, sizes) for s in steps)
    return Totals(flops, moved, bflops, bmoved, max(sizes_out, default=0), kept, time)


def contraction(value: str, spec: str, dims: Mapping[str, int], grads: int, batch: str = "z", axis: str = "") -> Step:
    """A dense pairwise einsum ``spec`` (e.g. ``"zui,zvj->zuvij"``), ``grads`` of its operands needing a gradient.

    >>> s = contraction("y", "zui,uw->zwi", {"z": 1, "u": 4, "w": 2, "i": 3}, grads=2, axis="node")
    >>> s.flops, s.bytes, s.out  # 4*2*3 multiply-adds; reads 12 per row (the weights are not batched), writes 6
    (48, 72, 6)
    """
    inputs, output = spec.split("->")
    terms = inputs.split(",")
    indices = set("".join(terms))
    size = math.prod(dims[c] for c in indices if c != batch)
    summed = bool(indices - set(output))
    flops = size * (len(terms) - 1 + summed)
    batched = [t for t in [*terms, output] if batch in t]
    moved = ELEMENT * sum(math.prod(dims[c] for c in t if c != batch) for t in batched)
    out = math.prod(dims[c] for c in output if c != batch)
    on_rows = batch in output
    # every row its own small matrices (per-row weights): torch runs a bmm over the rows, far below a large einsum
    per_row = summed and sum(batch in t for t in terms) > 1
    return Step(
        value,
        spec,
        "batched" if per_row else "dense",
        axis if on_rows else "",
        flops,
        moved,
        out if on_rows else 0,
        flops * grads,
        moved * grads,
    )
