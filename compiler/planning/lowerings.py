"""The lowerings: every way the plan can compute a vertex, one registry entry each.

An entry of :data:`LOWERINGS` says where it applies and what it costs: its ``plan`` function returns the priced
candidate for one vertex (a :class:`Lowered`), or ``None`` where it does not apply.  Codegen has one emitter per
entry, under the same name (``fdg.codegen.vertex.EMITTERS``).  For a ``couple`` every applicable candidate is priced
and the cost model picks the fastest at :data:`REPRESENTATIVE_ROWS` rows (or, where the best one depends on the batch
size, the module holds two and picks per call: the ``per-call`` lowering); ``fuse`` and ``power`` have planners of
their own (:mod:`fdg.planning.fuse`, :mod:`fdg.planning.power`); the other vertices have one lowering each.  Adding a
lowering is adding one entry here and one emitter there.

A :class:`~fdg.planning.pin.Pin` replaces the cost model's choice for one vertex by the user's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

from fdg import cost, ir
from fdg.cost import steps
from fdg.errors import FdgArgumentError
from fdg.planning.einsum import Contraction, couple_contractions, linear_contractions
from fdg.planning.fuse.planner import FusePlan, plan_fuse
from fdg.planning.grouping import Grouped, group
from fdg.planning.pin import Pin
from fdg.planning.power import PowerPlan, plan_power

#: rows (of every axis) at which lowerings are compared
REPRESENTATIVE_ROWS = 10000


@dataclass(frozen=True)
class Choice:
    """The lowering chosen for a coupling, the estimated time of each candidate, and where the choice flips."""

    lowering: str
    seconds: dict[str, float]  # candidate -> estimated forward + backward seconds at REPRESENTATIVE_ROWS rows
    crossover: int | None  # the chosen lowering is estimated faster from this many rows on (None: at every size)
    below: str | None = None  # the candidate estimated fastest below the crossover
    per_call: bool = False  # the module picks between ``below`` and ``lowering`` per call, by its number of rows
    pinned: bool = False  # the user chose it (a Pin), not the cost model


@dataclass(frozen=True)
class Lowered:
    """The lowering of one vertex: a key of :data:`LOWERINGS`, its priced steps and what its emitter reads."""

    lowering: str
    steps: tuple[cost.Step, ...]
    baseline: tuple[cost.Step, ...]  # the naive implementation, for the report's comparison
    contractions: tuple[Contraction, ...] = ()  # dense (and per-call): per path
    grouped: Grouped | None = None  # grouped, grouped+sparse, fused, per-call: the blocks
    choice: Choice | None = None  # a couple with alternatives: why this one
    fuse: FusePlan | None = None
    power: PowerPlan | None = None

    @property
    def paths(self) -> int:
        """Its CG paths: a coupling's or a fuse's paths, a power's coupled trees (per channel)."""
        if self.fuse is not None:
            return self.fuse.choice.paths
        if self.power is not None:
            return self.power.trees
        return len(self.contractions)


class Site:
    """One vertex being planned: its payload, operands and Python name, and the namer for what it adds."""

    def __init__(self, diagram: ir.Diagram, node: str, value: str, namer: Callable[[str], str]) -> None:
        self.node, self.value, self.namer = node, value, namer
        self.op = diagram.op(node)
        self.out = diagram.out(node)
        self.operands = [diagram.out(n) for n in diagram.operands(node)]

    @functools.cached_property
    def features(self) -> list[ir.Feature]:
        """The data operands of a couple (two) or linear (one), without weights or indices."""
        found = [t for t in self.operands if isinstance(t, ir.Feature)]
        return found[: 2 if isinstance(self.op, ir.Couple) else 1]

    @property
    def axis(self) -> str:
        assert isinstance(self.out, ir.Feature)
        return self.out.axis.name

    @functools.cached_property
    def contractions(self) -> tuple[Contraction, ...]:
        batched = self.op.weights.kind in ("input", "per_index")
        if isinstance(self.op, ir.Couple):
            return couple_contractions(self.op, *self.features, batched)
        assert isinstance(self.op, ir.Linear)
        return linear_contractions(self.op, self.features[0], batched)

    @functools.cached_property
    def baseline(self) -> tuple[cost.Step, ...]:
        assert isinstance(self.op, ir.Couple | ir.Linear)
        return steps.baseline(self.value, self.op, self.features, self.contractions, self.axis)

    @functools.cached_property
    def grouping(self) -> Grouped | None:
        if not isinstance(self.op, ir.Couple):
            return None
        return group(self.op, *self.features)


def _dense(site: Site) -> Lowered | None:
    if not isinstance(site.op, ir.Couple | ir.Linear):
        return None
    priced = steps.dense(site.value, site.op, site.features, site.contractions, site.axis)
    return Lowered("dense", priced, site.baseline, site.contractions)


def _grouped(name: str, sparse: bool, fused: bool) -> Callable[[Site], Lowered | None]:
    def plan(site: Site) -> Lowered | None:
        g = site.grouping
        if g is None or (fused and g.mode != "uvu"):
            return None
        assert isinstance(site.op, ir.Couple)
        g = replace(g, sparse=sparse, fused=fused)
        priced = steps.grouped(site.value, site.op, site.features[0], g, site.axis)
        return Lowered(name, priced, site.baseline, site.contractions, g)

    return plan


def _fuse(site: Site, pin: Pin | None = None) -> Lowered | None:
    if not isinstance(site.op, ir.Fuse):
        return None
    f = plan_fuse(site.value, site.op, site.operands, site.namer, REPRESENTATIVE_ROWS, pin)
    return Lowered("fuse", f.evaluation.steps, f.baseline, fuse=f)


def _power(site: Site) -> Lowered | None:
    if not isinstance(site.op, ir.Power):
        return None
    a = site.operands[0]
    assert isinstance(a, ir.Feature)
    p = plan_power(site.value, site.op, a, site.namer(f"{site.value}_power"))
    return Lowered("power", p.steps, p.baseline, power=p)


def _single(site: Site) -> Lowered | None:
    if isinstance(site.op, ir.Couple | ir.Linear | ir.Fuse | ir.Power) or not isinstance(site.out, ir.Feature):
        return None
    priced = steps.simple(site.value, site.op, site.out, site.operands)
    return Lowered("single", priced, priced)


@dataclass(frozen=True)
class Lowering:
    applies: str  # where it applies, in words
    plan: Callable[[Site], Lowered | None]  # the priced candidate for a vertex, None where it does not apply
    choosable: bool = True  # one of a coupling's candidates (the cost model or a Pin picks among them)


#: every lowering, by the name the report, the pins and codegen's emitters use
LOWERINGS: dict[str, Lowering] = {
    "dense": Lowering("every couple and linear: one einsum chain per path, paths summed into their irrep", _dense),
    "grouped": Lowering(
        "couple in mode uvu with weights, or uvw with shared learned weights, when b has multiplicity one: "
        "batched matmuls per block of paths",
        _grouped("grouped", sparse=False, fused=False),
    ),
    "grouped+sparse": Lowering(
        "where grouped applies: the same, with b meeting the CG tensors entry by entry",
        _grouped("grouped+sparse", sparse=True, fused=False),
    ),
    "fused": Lowering(
        "where grouped applies in mode uvu: one native CPU kernel call (the grouped code off the CPU)",
        _grouped("fused", sparse=False, fused=True),
    ),
    "per-call": Lowering(
        "a couple whose fastest lowering depends on its rows: dense and a grouped variant, picked per call",
        lambda site: None,
        choosable=False,
    ),
    "fuse": Lowering("every fuse: the cheapest tree or the folded tensor (fdg.planning.fuse)", _fuse, False),
    "power": Lowering("every power: a fdg.runtime.SymmetricPower submodule (fdg.planning.power)", _power, False),
    "single": Lowering("sh, gathers, scatter-sums, sums and scalings: one torch call each", _single, False),
}


def lower_vertex(site: Site, pin: Pin | None) -> Lowered | None:
    """The lowering of one vertex (not an input or output): the cost model's choice, or the pinned one."""
    if isinstance(site.op, ir.Fuse):
        return _fuse(site, pin)
    if pin is not None and not isinstance(site.op, ir.Couple | ir.Linear):
        raise FdgArgumentError(f"cannot pin the lowering of {site.value}: only couple, linear and fuse have a choice")
    if not isinstance(site.op, ir.Couple | ir.Linear):
        return next((lowered for entry in LOWERINGS.values() if (lowered := entry.plan(site)) is not None), None)
    candidates = {name: c for name, e in LOWERINGS.items() if e.choosable and (c := e.plan(site)) is not None}
    if pin is not None and pin.lowering not in candidates:
        raise FdgArgumentError(
            f"cannot pin {site.value} to {pin.lowering!r}: its lowerings are {', '.join(sorted(candidates))}"
        )
    if len(candidates) == 1:
        return candidates["dense"]
    choice = choose({name: c.steps for name, c in candidates.items()})
    if pin is not None:
        choice = Choice(pin.lowering, choice.seconds, None, pinned=True)
    chosen = candidates[choice.lowering]
    # the grouped variant the module holds: the chosen one, or the one it switches to per call
    held_name = choice.below if choice.per_call and choice.lowering == "dense" else choice.lowering
    assert held_name is not None
    held = candidates[held_name].grouped
    if held is not None:
        v = site.value
        names = {"method": "slice", "matrix": "cg", "layout_a": "cg_a", "layout_y": "cg_y", "table": "cg_table"}
        held = replace(held, **{field: site.namer(f"{v}_{suffix}") for field, suffix in names.items()})
    lowering = "per-call" if choice.per_call else chosen.lowering
    return replace(chosen, lowering=lowering, grouped=held, choice=choice)


def choose(candidates: dict[str, tuple[cost.Step, ...]]) -> Choice:
    """The candidate with the least estimated time at REPRESENTATIVE_ROWS rows, and from how many rows it wins."""

    def estimate(name: str, rows: int) -> float:
        sizes = {s.axis: rows for s in candidates[name]}
        return sum(cost.seconds(s, sizes) for s in candidates[name])

    times = {name: estimate(name, REPRESENTATIVE_ROWS) for name in candidates}
    best = min(times, key=lambda name: (times[name], name))
    crossover = None
    for rows in (2**e for e in range(21)):
        if all(estimate(best, rows) <= estimate(other, rows) for other in candidates):
            crossover = rows if rows > 1 else None
            break
    if crossover is None:
        return Choice(best, times, None)
    below = min(candidates, key=lambda name: (estimate(name, crossover // 2), name))
    # a module holds the dense lowering and at most one grouped variant, so it can switch between those two
    return Choice(best, times, crossover, below, "dense" in (best, below))
