"""``check_ir``: the invariants every IR diagram satisfies, checked after lowering and after every pass.

A failure here is a bug in fdg (lowering or a pass broke the IR), never a user error, so it
raises :class:`IRError` with the text dump attached rather than a diagnostic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx

from fdg import ir
from fdg.checker import rules
from fdg.checker.activations import FUNCTIONS
from fdg.checker.structure import gated_irreps
from fdg.runtime import Irrep, Irreps, symmetric_power_multiplicity
from fdg.runtime.fusion_paths import FuseSpec, fuse_layout

#: ``need(condition, what)`` raises :class:`IRError` naming the vertex when ``condition`` is false
Need = Callable[[bool, str], None]


class IRError(AssertionError):
    """An IR invariant is violated (an internal error)."""


def check_ir(diagram: ir.Diagram) -> None:
    """Check the IR invariants; raise :class:`IRError` naming the first violation.

    1. The graph is a directed acyclic multigraph; every node has ``op`` (a vertex payload) and
       ``out`` (a wire type; ``None`` exactly for outputs, which have no consumers).
    2. Every edge carries ``port`` and ``wire``, and ``wire`` equals its producer's ``out``.
    3. Each vertex's ports are exactly ``0..n-1`` with the arity and wire kinds its kind expects.
    4. The produced type follows from the operands: gathers and scatter-sums move between the
       index's axes, ``add`` and ``scale`` keep their operand's type, ``sh`` maps a 1o wire to
       sh(L), ``couple``/``linear`` keep the axis and produce their declared irreps.
    5. ``couple`` paths satisfy the triangle, parity and mode multiplicity rules, in e3nn order,
       with e3nn's normalization; ``linear`` paths join equal irreps; numel matches the paths
       (for ``fuse``: one weight per path of its basis tree and channel; for ``power``: the dimension of its
       function space, by characters, per channel).
    6. External weights wires carry the numel their consuming vertex needs, on the same axis;
       ``learned[z]`` index wires are over the vertex's axis with a fixed range equal to ``count``.
    7. Inputs and outputs have unique names; there is at least one output.
    """
    g = diagram.graph
    if not nx.is_directed_acyclic_graph(g):
        raise IRError(f"graph has a cycle\n{ir.dump(diagram)}")
    names: set[str] = set()
    for node, data in g.nodes(data=True):
        op, out = data.get("op"), data.get("out", "missing")
        if isinstance(op, ir.Input | ir.Output):
            key = ("in:" if isinstance(op, ir.Input) else "out:") + op.name
            if key in names:
                raise IRError(f"duplicate {key}")
            names.add(key)
        if (out is None) != isinstance(op, ir.Output):
            raise IRError(f"{node}: only outputs produce no wire")
        if isinstance(op, ir.Output) and g.out_degree(node):
            raise IRError(f"{node}: an output has consumers")
        for _, _, edge in g.in_edges(node, data=True):
            if "port" not in edge or "wire" not in edge:
                raise IRError(f"{node}: edge without port/wire")
        for src, _, edge in g.in_edges(node, data=True):
            if edge["wire"] != g.nodes[src]["out"]:
                raise IRError(f"{src} -> {node}: wire {edge['wire']} differs from {g.nodes[src]['out']}")
        ports = sorted(p for _, _, p in g.in_edges(node, data="port"))
        if ports != list(range(len(ports))):
            raise IRError(f"{node}: ports {ports} are not 0..n-1")
        _check_vertex(diagram, node, op, out)
    if not any(isinstance(op, ir.Output) for _, op in g.nodes(data="op")):
        raise IRError("no output")


def _check_vertex(diagram: ir.Diagram, node: str, op: ir.Vertex, out: ir.WireType | None) -> None:
    ins = [diagram.out(src) for src in diagram.operands(node)]

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise IRError(f"{node} ({ir.describe(op)}): {what}; operands {[str(t) for t in ins]}, out {out}")

    match op:
        case ir.Input():
            need(not ins, "an input has no operands")
        case ir.Output():
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature), "an output reads one feature wire")
        case ir.Gather():
            need(len(ins) == 2 and isinstance(ins[0], ir.Feature) and isinstance(ins[1], ir.IndexWire), "arity")
            assert isinstance(ins[0], ir.Feature) and isinstance(ins[1], ir.IndexWire)
            need(ins[0].axis == ins[1].target and out == ir.Feature(ins[1].axis, ins[0].irreps), "gather typing")
        case ir.ScatterSum():
            need(len(ins) == 2 and isinstance(ins[0], ir.Feature) and isinstance(ins[1], ir.IndexWire), "arity")
            assert isinstance(ins[0], ir.Feature) and isinstance(ins[1], ir.IndexWire)
            need(ins[0].axis == ins[1].axis and out == ir.Feature(ins[1].target, ins[0].irreps), "scatter typing")
        case ir.Add():
            need(len(ins) >= 2 and all(t == out for t in ins) and isinstance(out, ir.Feature), "add typing")
        case ir.Scale():
            need(len(ins) == 1 and ins[0] == out and isinstance(out, ir.Feature), "scale typing")
        case ir.Cat():
            need(len(ins) >= 2 and all(isinstance(t, ir.Feature) for t in ins), "cat reads two or more feature wires")
            features = [t for t in ins if isinstance(t, ir.Feature)]
            joined = Irreps([block for t in features for block in t.irreps])
            need(len({t.axis for t in features}) == 1 and out == ir.Feature(features[0].axis, joined), "cat typing")
        case ir.Select(start=start, stop=stop, channels=channels):
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature), "select reads one feature wire")
            assert isinstance(ins[0], ir.Feature)
            need(0 <= start < stop <= len(ins[0].irreps), "select: blocks inside the wire")
            if channels is not None:
                need(stop == start + 1, "channels: of one block")
                need(0 <= channels[0] < channels[1] <= ins[0].irreps[start].mul, "channels: inside the block")
            need(out == ir.Feature(ins[0].axis, op.picked(ins[0].irreps)), "select typing")
        case ir.Activation(function=function):
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature), "an activation reads one feature wire")
            assert isinstance(ins[0], ir.Feature)
            need(all(ir_.l == 0 for _, ir_ in ins[0].irreps), "an activation applies to scalars")
            need(function in FUNCTIONS, "activation: a known function")
            parity = FUNCTIONS[function][0]
            kept = Irreps([(mul, (0, ir_.p if ir_.p == 1 else parity)) for mul, ir_ in ins[0].irreps])
            need(out == ir.Feature(ins[0].axis, kept), "activation typing and parity")
        case ir.Radial(kind=kind, args=args):
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature), "a radial feature reads one feature wire")
            assert isinstance(ins[0], ir.Feature)
            need(ins[0].irreps == Irreps("1o" if kind == "length" else "1x0e"), "radial input: a vector or a length")
            size = int(args[0]) if kind == "bessel" else 1
            need(out == ir.Feature(ins[0].axis, Irreps(f"{size}x0e")), "radial typing")
        case ir.NormActivation(function=function):
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature), "norm_activation reads one feature wire")
            need(out == ins[0] and function in FUNCTIONS, "norm_activation keeps its input's type, a known function")
        case ir.Gate():
            need(len(ins) == 3 and all(isinstance(t, ir.Feature) for t in ins), "gate reads scalars, gates, gated")
            features = [t for t in ins if isinstance(t, ir.Feature)]
            expected = gated_irreps(*(t.irreps for t in features))
            need(not isinstance(expected, str) and len({t.axis for t in features}) == 1, "gate: its inputs fit")
            need(out == ir.Feature(features[0].axis, expected), "gate typing")
        case ir.Sort(order=order):
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature), "sort reads one feature wire")
            assert isinstance(ins[0], ir.Feature)
            need(order == rules.sort_order(ins[0].irreps), "sort order: e3nn's Irreps.sort")
            need(out == ir.Feature(ins[0].axis, Irreps([ins[0].irreps[k] for k in order])), "sort typing")
        case ir.SphericalHarmonics(lmax=lmax):
            need(len(ins) == 1 and isinstance(ins[0], ir.Feature) and ins[0].irreps == Irreps("1o"), "sh input")
            need(isinstance(out, ir.Feature) and out.irreps == Irreps.spherical_harmonics(lmax), "sh output")
        case ir.Couple():
            _check_couple(op, ins, out, need)
        case ir.Linear():
            need(len(ins) in (1, 2) and isinstance(ins[0], ir.Feature), "linear arity")
            assert isinstance(ins[0], ir.Feature)
            need(out == ir.Feature(ins[0].axis, op.irreps_out), "linear output type")
            need(op.paths == rules.linear_paths(ins[0].irreps, op.irreps_out), "linear paths")
            need(op.weights.numel == rules.linear_numel(ins[0].irreps, op.irreps_out, op.paths), "linear numel")
            _check_weights(op.weights, ins[0].axis, ins[1:], need)
        case ir.Fuse():
            _check_fuse(op, ins, out, need)
        case ir.Power():
            _check_power(op, ins, out, need)


def _check_power(op: ir.Power, ins: list[ir.WireType], out: ir.WireType | None, need: Need) -> None:
    need(len(ins) in (1, 2) and isinstance(ins[0], ir.Feature), "power arity")
    a = ins[0]
    assert isinstance(a, ir.Feature)
    need(out == ir.Feature(a.axis, op.irreps_out), "power typing")
    need(len({mul for mul, _ in a.irreps} | {mul for mul, _ in op.irreps_out}) == 1, "power keeps one multiplicity")
    V = a.irreps.channel()
    per_channel = sum(symmetric_power_multiplicity(V, k, ir_) for _, ir_ in op.irreps_out for k in range(1, op.nu + 1))
    need(op.weights.numel == op.irreps_out[0].mul * per_channel, "power numel: the dimension of its function space")
    _check_weights(op.weights, a.axis, ins[1:], need)


def _check_couple(op: ir.Couple, ins: list[ir.WireType], out: ir.WireType | None, need: Need) -> None:
    need(len(ins) in (2, 3) and isinstance(ins[0], ir.Feature) and isinstance(ins[1], ir.Feature), "couple arity")
    a, b = ins[0], ins[1]
    assert isinstance(a, ir.Feature) and isinstance(b, ir.Feature)
    need(a.axis == b.axis and out == ir.Feature(a.axis, op.irreps_out), "couple typing")
    weighted = op.weights.kind != "none"
    if op.per_path:
        kept = {ir_ for _, ir_ in op.irreps_out}
        found, expected = rules.per_path(a.irreps, b.irreps, kept.__contains__, op.mode, weighted)
        need(found == op.irreps_out, "per-path couple: one output block per path of its irreps")
    else:
        expected = rules.couple_paths(a.irreps, b.irreps, op.irreps_out, op.mode, weighted)
    need(op.paths == expected, "couple paths differ from the e3nn enumeration")
    need(all(math.isfinite(p.alpha) and p.alpha > 0 for p in op.paths), "path normalization")
    need(op.weights.numel == rules.couple_numel(op.paths), "couple numel")
    _check_weights(op.weights, a.axis, ins[2:], need)


def _check_fuse(op: ir.Fuse, ins: list[ir.WireType], out: ir.WireType | None, need: Need) -> None:
    n = len(op.labels)
    features = [t for t in ins[:n] if isinstance(t, ir.Feature)]
    need(len(features) == n >= 2 and len(ins) in (n, n + 1), "fuse arity")
    axis = features[0].axis
    need(all(t.axis == axis for t in features) and out == ir.Feature(axis, op.irreps_out), "fuse typing")
    muls = {mul for t in features for mul, _ in t.irreps} | {mul for mul, _ in op.irreps_out}
    need(len(muls - {1}) <= 1, "fuse inputs share one multiplicity (or have 1)")
    layout = fuse_layout(FuseSpec.of([t.irreps for t in features], op.irreps_out, op.basis, op.lmax))
    numel = 0 if op.weights.kind == "none" else len(layout.paths) * max(muls)
    need(op.weights.numel == numel, "fuse numel: one weight per path and channel")
    _check_weights(op.weights, axis, ins[n:], need)


def _scalar_rows(wire: ir.WireType, scalars: ir.Feature) -> bool:
    """A feature wire of even scalars, in blocks or one, read as per-row weights."""
    return isinstance(wire, ir.Feature) and wire.axis == scalars.axis and wire.irreps.simplify() == scalars.irreps


def _check_weights(weights: ir.Weights, axis: ir.Axis, extra: list[ir.WireType], need: Need) -> None:
    if weights.kind == "input":
        scalars = ir.Feature(axis, Irreps([(weights.numel, Irrep(0, 1))]))
        need(
            len(extra) == 1 and (extra[0] == ir.WeightsWire(axis, weights.numel) or _scalar_rows(extra[0], scalars)),
            "external weights: a weights wire, or a feature wire of as many 0e channels",
        )
    elif weights.kind == "per_index":
        need(len(extra) == 1 and isinstance(extra[0], ir.IndexWire), "learned[z] index wire")
        assert isinstance(extra[0], ir.IndexWire)
        need(extra[0].axis == axis and extra[0].target.size == weights.count, "learned[z] index range")
    else:
        need(not extra, "no weight operand")
