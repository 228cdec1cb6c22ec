"""The plan: every decision codegen needs, computed once from the optimized IR.

It fixes the Python name of every value, the CG buffers of the dense lowering (one per ``(l1, l2, l3)``, named
``cg_{l1}_{l2}_{l3}``), the learned parameters and their shapes, where each axis size comes from, and for every vertex
its lowering (:mod:`fdg.planning.lowerings`: the registry of lowerings, each with where it applies and what it
costs), chosen by the cost model or pinned by the user.  It keeps the priced steps of the chosen lowering and of the
naive baseline, which the report reads.  Codegen only reads this value; it never searches again.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from fdg import cost, ir
from fdg.cost import ELEMENT
from fdg.errors import FdgArgumentError
from fdg.ir import GENERATED
from fdg.planning.einsum import Contraction
from fdg.planning.fuse.planner import FusePlan
from fdg.planning.grouping import Grouped
from fdg.planning.lowerings import Choice, Lowered, Site, lower_vertex
from fdg.planning.pin import Pin
from fdg.planning.power import PowerPlan
from fdg.runtime.module import FdgModule


@dataclass(frozen=True)
class Parameter:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class IndexedAccess:
    """A couple or fuse on the native kernel that reads operands through gathers and sums its result by an index in
    the kernel itself: the gather and the scatter-sum vertices are absorbed (no ``[edge, features]`` tensor)."""

    gathers: tuple[str | None, ...]  # per operand the kernel reads through an index (x, and z where paired): a Gather
    scatter: str | None  # the ScatterSum vertex its result goes to


@dataclass(frozen=True)
class Plan:
    diagram: ir.Diagram
    order: tuple[str, ...]
    names: dict[str, str]  # node id -> Python identifier
    cg: dict[str, tuple[int, int, int]]  # buffer name -> (l1, l2, l3)
    parameters: dict[str, Parameter]  # node id -> its learned parameter
    sizes: dict[str, str]  # axis name -> expression giving its size in forward
    lowered: dict[str, Lowered]  # node id -> its lowering (every vertex but inputs and outputs)
    indexed: dict[str, IndexedAccess]  # couple or fuse node id -> the gathers and scatter-sum its kernel call absorbs
    biases: dict[str, Parameter]  # linear node id -> its learned bias

    @property
    def absorbed(self) -> dict[str, str]:
        """Gather and scatter-sum node id -> the couple or fuse whose kernel call computes it (codegen emits it only in
        the fallback of that call)."""
        return {n: node for node, ix in self.indexed.items() for n in (*ix.gathers, ix.scatter) if n is not None}

    @property
    def learned(self) -> int:
        """The number of learned weights (every parameter of the module: weights and biases)."""
        return sum(math.prod(p.shape) for p in (*self.parameters.values(), *self.biases.values()))

    # views of ``lowered``, by what codegen and the report read
    @property
    def steps(self) -> dict[str, tuple[cost.Step, ...]]:
        """Node id -> priced steps of the chosen lowering."""
        return {n: lw.steps for n, lw in self.lowered.items()}

    @property
    def baseline(self) -> dict[str, tuple[cost.Step, ...]]:
        """Node id -> priced steps of the naive baseline."""
        return {n: lw.baseline for n, lw in self.lowered.items()}

    @property
    def contractions(self) -> dict[str, tuple[Contraction, ...]]:
        """Couple and linear node id -> its paths as einsums."""
        return {n: lw.contractions for n, lw in self.lowered.items() if lw.contractions}

    @property
    def grouped(self) -> dict[str, Grouped]:
        """Couple node id -> the blocks of the grouped variant the module holds."""
        return {n: lw.grouped for n, lw in self.lowered.items() if lw.grouped is not None}

    @property
    def choices(self) -> dict[str, Choice]:
        """Couple node id -> why its lowering was chosen (couplings with alternatives)."""
        return {n: lw.choice for n, lw in self.lowered.items() if lw.choice is not None}

    @property
    def fusions(self) -> dict[str, FusePlan]:
        return {n: lw.fuse for n, lw in self.lowered.items() if lw.fuse is not None}

    @property
    def powers(self) -> dict[str, PowerPlan]:
        return {n: lw.power for n, lw in self.lowered.items() if lw.power is not None}


class _Namer:
    """Python identifiers for values: the user's name where possible, never clashing, never a keyword.

    ``namer(wanted)`` names a local of ``forward``; ``namer.attribute(wanted)`` an attribute of the module (a
    parameter, buffer, method or submodule), which must not also be an attribute every module has (``to``, ``cuda``,
    ``register_cg``, ...).
    """

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken) | GENERATED
        self.attributes = frozenset(dir(FdgModule))

    def __call__(self, wanted: str, avoid: frozenset[str] = frozenset()) -> str:
        base = wanted.lstrip("_") or "t"
        base = base if base.isidentifier() and not keyword.iskeyword(base) else f"t_{base}"
        if base[0].isdigit():
            base = f"t{base}"
        name, n = base, 1
        while name in self.taken or name in avoid or keyword.iskeyword(name):
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name

    def attribute(self, wanted: str) -> str:
        return self(wanted, self.attributes)


def make_plan(diagram: ir.Diagram, pins: Mapping[str, Pin] | None = None) -> Plan:
    """Decide names, buffers, parameters and lowerings for a checked, optimized diagram; ``pins`` maps value names
    to the lowering the user wants instead of the cost model's."""
    pins = dict(pins or {})
    order = diagram.order()
    namer = _Namer(set(diagram.inputs()))
    names = {node: node for node in diagram.inputs()}
    values = [node for node in order if node not in names and not isinstance(diagram.op(node), ir.Output)]
    for node in sorted(values, key=lambda node: node.startswith("_")):  # the user's names first, then generated ones
        names[node] = namer(node)
    pinned = _pinned(diagram, names, pins)
    lowered: dict[str, Lowered] = {}
    parameters: dict[str, Parameter] = {}
    biases: dict[str, Parameter] = {}
    for node in order:
        if isinstance(diagram.op(node), ir.Input | ir.Output):
            continue
        found = lower_vertex(Site(diagram, node, names[node], namer.attribute), pinned.get(node))
        if found is not None:
            lowered[node] = found
        parameter = _parameter(diagram.op(node))
        if parameter is not None:
            parameters[node] = Parameter(namer.attribute(f"{names[node]}_weight"), parameter)
        op = diagram.op(node)
        if isinstance(op, ir.Linear) and op.bias:
            biases[node] = Parameter(namer.attribute(f"{names[node]}_bias"), (op.bias_numel,))
    indexed = _indexed_access(diagram, lowered, names)
    cg = _cg_buffers(diagram, lowered)
    return Plan(diagram, tuple(order), names, cg, parameters, _sizes(diagram), lowered, indexed, biases)


def _indexed_access(
    diagram: ir.Diagram, lowered: dict[str, Lowered], names: Mapping[str, str]
) -> dict[str, IndexedAccess]:
    """The couples and fuses on the native kernel whose operands read by the kernel (a couple's first, a paired fuse's
    first two) are gathers used only there, or whose result is used only by a scatter-sum.  Their kernel step says
    what it absorbs; the absorbed vertices cost nothing of their own."""
    found = {}
    for node, lw in lowered.items():
        if lw.lowering == "fused":
            ports: tuple[int, ...] = (0,)
        elif lw.fuse is not None and lw.fuse.evaluation.products[-1].paired:
            ports = (0, 1)
        else:
            continue
        operands = diagram.operands(node)
        gathers = tuple(
            operands[port]
            if isinstance(diagram.op(operands[port]), ir.Gather)
            and list(diagram.graph.out_edges(operands[port], data="port")) == [(operands[port], node, port)]
            else None
            for port in ports
        )
        users = list(diagram.graph.out_edges(node, data="port"))
        scatter = None
        if len(users) == 1 and isinstance(diagram.op(users[0][1]), ir.ScatterSum) and users[0][2] == 0:
            scatter = users[0][1]
        if all(g is None for g in gathers) and scatter is None:
            continue
        found[node] = IndexedAccess(gathers, scatter)
        notes = [f"gather {names[diagram.operands(n)[1]]}" for n in gathers if n is not None]
        notes += [f"scatter {names[diagram.operands(n)[1]]}" for n in (scatter,) if n is not None]
        *head, kernel = lw.steps
        # per row, a gathered operand is read from its (small, cached) table and the result goes to its sum: neither
        # is a per-row tensor moved through memory
        out = diagram.out(node)
        assert isinstance(out, ir.Feature)
        read = 0
        for n in gathers:
            if n is not None:
                a = diagram.out(n)
                assert isinstance(a, ir.Feature)
                read += a.irreps.dim
        saved = ELEMENT * (read + (out.irreps.dim if scatter else 0))
        fused = replace(kernel, what=f"{kernel.what[:-1]}, {', '.join(notes)}]", out=0 if scatter else kernel.out,
                        bytes=kernel.bytes - saved, backward_bytes=kernel.backward_bytes - 3 * saved)  # fmt: skip
        lowered[node] = replace(lw, steps=(*head, fused))
        for absorbed in (*gathers, scatter):
            if absorbed is not None:  # done by the kernel's call, reading or writing in place
                lowered[absorbed] = replace(lowered[absorbed], steps=())
    return found


def _pinned(diagram: ir.Diagram, names: Mapping[str, str], pins: Mapping[str, Pin]) -> dict[str, Pin]:
    """Node id -> its pin; a pin names a value as the diagram does (``lambda``) or as the module does (``t_lambda``)."""
    node_of = {name: node for node, name in names.items()} | {node: node for node in names}
    unknown = sorted(set(pins) - set(node_of))
    if unknown:
        raise FdgArgumentError(f"cannot pin {', '.join(unknown)}: diagram {diagram.name} has no such value")
    found = {node_of[name]: pin for name, pin in pins.items()}
    inputs = sorted(names[node] for node in found if isinstance(diagram.op(node), ir.Input))
    if inputs:
        raise FdgArgumentError(f"cannot pin {', '.join(inputs)}: an input is given, not computed")
    return found


def _parameter(op: ir.Vertex) -> tuple[int, ...] | None:
    """The shape of a vertex's learned parameter: flat for ``learned``, a row per index for ``learned[z]``."""
    weights = getattr(op, "weights", None)
    if not isinstance(weights, ir.Weights) or weights.kind not in ("learned", "per_index"):
        return None
    return (weights.numel,) if weights.kind == "learned" else (weights.count, weights.numel)


def _cg_buffers(diagram: ir.Diagram, lowered: Mapping[str, Lowered]) -> dict[str, tuple[int, int, int]]:
    """The CG tensors the dense lowering of couplings reads (also held by one picked per call)."""
    cg = {}
    for node, lw in lowered.items():
        op = diagram.op(node)
        if isinstance(op, ir.Couple) and lw.lowering in ("dense", "per-call"):
            a, b = (diagram.out(n) for n in diagram.operands(node)[:2])
            assert isinstance(a, ir.Feature) and isinstance(b, ir.Feature)
            for c in lw.contractions:
                assert c.cg is not None
                cg[c.cg] = (a.irreps[c.i_in[0]].ir.l, b.irreps[c.i_in[1]].ir.l, op.irreps_out[c.i_out].ir.l)
    return dict(sorted(cg.items()))


def _sizes(diagram: ir.Diagram) -> dict[str, str]:
    """Where forward reads each axis size: the first input over it, else a scatter's declared size."""
    sizes: dict[str, str] = {}
    for node in diagram.inputs():
        sizes.setdefault(diagram.out(node).axis.name, f"{node}.shape[0]")
    for node in diagram.order():
        out = diagram.out(node)
        if isinstance(diagram.op(node), ir.ScatterSum) and isinstance(out, ir.Feature) and out.axis.size is not None:
            sizes.setdefault(out.axis.name, str(out.axis.size))
    return sizes
