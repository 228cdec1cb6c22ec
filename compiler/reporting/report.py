"""The cost report (SPEC section 5): what a compiled diagram costs, read from its plan before it runs.

For the chosen plan and for the naive baseline (dense CG, left to right, one einsum per path) it lists every step
with its kernel, lowering, FLOPs, bytes moved and result size at the given axis sizes; totals for forward and
backward; the largest intermediate and what autograd keeps for backward; the parameters; the lowering chosen for each
coupling with the estimates behind the choice and the size from which it wins; and the estimated speed-up of plan
over baseline.  Numbers are model estimates (``fdg.cost``), not measurements: ``benchmarks/`` measures.

>>> import fdg
>>> r = fdg.report("diagram D(mul = 8) { input x : mul x 1o over node\\n output y = linear(x) -> mul x 1o }")
>>> r.plan.flops  # 8 x 8 multiply-adds on 3 components for 1000 rows, 2 FLOPs each
384000.0
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from fdg import cost, ir
from fdg.errors import FdgArgumentError
from fdg.planning.fuse.planner import FuseChoice
from fdg.planning.lowerings import Choice
from fdg.planning.plan import Plan

#: rows assumed for an axis the caller gives no size for
DEFAULT_SIZES = {"edge": 20000}
DEFAULT_ROWS = 1000
#: the most rows an axis may be given (a trillion rows is far past any model; beyond is a typo)
MAX_ROWS = 10**12


@dataclass(frozen=True)
class Report:
    diagram: str
    sizes: dict[str, int]
    steps: tuple[cost.Step, ...]
    baseline_steps: tuple[cost.Step, ...]
    plan: cost.Totals
    baseline: cost.Totals
    parameters: int
    external: dict[str, int]  # external weights input -> numel per row
    choices: dict[str, Choice]  # value name -> lowering choice
    fusions: dict[str, FuseChoice] = field(default_factory=dict)  # value name -> tree and folding of a fuse
    powers: dict[str, str] = field(default_factory=dict)  # value name -> what its power evaluates, in words

    @property
    def speedup(self) -> float:
        """Estimated forward + backward time of the baseline over that of the plan."""
        return self.baseline.seconds / self.plan.seconds if self.plan.seconds else 1.0

    def to_json(self) -> str:
        """The report as JSON (``fdg report --json``)."""
        return json.dumps(self.as_dict(), indent=2)

    def as_dict(self) -> dict[str, object]:
        def steps(found: tuple[cost.Step, ...]) -> list[dict[str, object]]:
            return [
                {
                    "value": s.value,
                    "kernel": s.what,
                    "lowering": s.lowering,
                    "axis": s.axis,
                    "rows": cost.rows(s, self.sizes),
                    "flops": s.flops * cost.rows(s, self.sizes),
                    "bytes": s.bytes * cost.rows(s, self.sizes),
                    "result_elements": s.out * cost.rows(s, self.sizes),
                    "backward_flops": s.backward_flops * cost.rows(s, self.sizes),
                    "backward_bytes": s.backward_bytes * cost.rows(s, self.sizes),
                    "calls": cost.launches(s, self.sizes),
                }
                for s in found
            ]

        def totals(t: cost.Totals) -> dict[str, float]:
            return {
                "forward_flops": t.flops,
                "forward_bytes": t.bytes,
                "backward_flops": t.backward_flops,
                "backward_bytes": t.backward_bytes,
                "largest_intermediate_bytes": t.largest,
                "kept_for_backward_bytes": t.kept,
                "estimated_seconds": t.seconds,
            }

        return {
            "diagram": self.diagram,
            "sizes": self.sizes,
            "parameters": self.parameters,
            "external_weights": self.external,
            "plan": {"steps": steps(self.steps), "totals": totals(self.plan)},
            "baseline": {"steps": steps(self.baseline_steps), "totals": totals(self.baseline)},
            "choices": {
                name: {
                    "lowering": c.lowering,
                    "estimated_seconds": c.seconds,
                    "wins_from_rows": c.crossover,
                    "below": c.below,
                    "per_call": c.per_call,
                    "pinned": c.pinned,
                }
                for name, c in self.choices.items()
            },
            "fusions": {name: f.as_dict() for name, f in self.fusions.items()},
            "powers": self.powers,
            "estimated_speedup": self.speedup,
        }

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        lines = [f"{self.diagram} at {sizes} (float32)", ""]
        lines += _table("plan", self.steps, self.sizes)
        lines += _totals(self.plan)
        lines += [
            "",
            *_table("baseline (dense CG, left to right, one einsum per path)", self.baseline_steps, self.sizes),
        ]
        lines += _totals(self.baseline)
        lines.append("")
        for name, c in self.choices.items():
            others = ", ".join(f"{k} {_seconds(v)}" for k, v in sorted(c.seconds.items()))
            wins = "at every size" if c.crossover is None else f"from {c.crossover} rows on"
            if c.below is not None:
                wins += f", {c.below} below" + ("; picked per call by the number of rows" if c.per_call else "")
            if c.pinned:
                lines.append(f"lowering of {name}: {c.lowering}, pinned (estimates: {others})")
            else:
                lines.append(f"lowering of {name}: {c.lowering} (estimates: {others}); {c.lowering} wins {wins}")
        for name, f in self.fusions.items():
            lines += f.lines(name)
        lines += self.powers.values()
        external = "".join(f" + {n} per row of {name}" for name, n in self.external.items())
        lines.append(f"parameters: {self.parameters} learned{external}")
        both = _ratio(self.plan.flops + self.plan.backward_flops, self.baseline.flops + self.baseline.backward_flops)
        lines.append(
            f"FLOPs, plan / baseline: forward {_ratio(self.plan.flops, self.baseline.flops)}, with backward {both}"
        )
        lines.append(f"estimated speed-up over baseline, forward + backward: {self.speedup:.1f}x")
        return "\n".join(lines)


def make_report(plan: Plan, sizes: Mapping[str, int] | None = None) -> Report:
    """The report of a plan at the given axis sizes (other axes: :data:`DEFAULT_SIZES`, else :data:`DEFAULT_ROWS`)."""
    d = plan.diagram
    for name, rows in (sizes or {}).items():
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
            raise FdgArgumentError(f"the size of axis {name} must be a whole number from 1 to {MAX_ROWS}, got {rows!r}")
    axes: dict[str, int] = {}
    for node in d.graph.nodes:
        out = d.out(node)
        if isinstance(out, ir.Feature | ir.IndexWire | ir.WeightsWire):
            for axis in (out.axis, getattr(out, "target", None)):
                if axis is not None and axis.name not in axes:
                    given = (sizes or {}).get(axis.name)
                    axes[axis.name] = given or axis.size or DEFAULT_SIZES.get(axis.name, DEFAULT_ROWS)
    unknown = sorted(set(sizes or {}) - set(axes))
    if unknown:
        raise FdgArgumentError(
            f"{d.name} has no axis {', '.join(unknown)}; its axes are {', '.join(sorted(axes)) or 'none'}"
        )
    found = tuple(s for node in plan.order if node in plan.steps for s in plan.steps[node])
    base = tuple(s for node in plan.order if node in plan.baseline for s in plan.baseline[node])
    external = {n: t.numel for n in d.inputs() if isinstance(t := d.out(n), ir.WeightsWire)}
    return Report(
        f"{d.name}({d.params_text})",
        dict(sorted(axes.items())),
        found,
        base,
        cost.evaluate(found, axes),
        cost.evaluate(base, axes),
        plan.learned,
        external,
        {plan.names[n]: c for n, c in plan.choices.items()},
        {plan.names[n]: f.choice for n, f in plan.fusions.items()},
        {plan.names[n]: p.line(plan.names[n]) for n, p in plan.powers.items()},
    )


def _table(title: str, steps: tuple[cost.Step, ...], sizes: Mapping[str, int]) -> list[str]:
    lines = [title, f"  {'value':<10} {'kernel':<46} {'lowering':<11} {'FLOPs':>9} {'bytes':>9} {'result':>9}"]
    for s in steps:
        n = cost.rows(s, sizes)
        result = _bytes(s.out * (min(n, s.chunk) if s.chunk else n) * cost.ELEMENT)
        lines.append(
            f"  {s.value:<10} {s.what:<46} {s.lowering:<11} {_si(s.flops * n):>9} {_bytes(s.bytes * n):>9} {result:>9}"
        )
    return lines


def _totals(t: cost.Totals) -> list[str]:
    return [
        f"  forward {_si(t.flops)}FLOP, {_bytes(t.bytes)} moved; backward {_si(t.backward_flops)}FLOP, "
        f"{_bytes(t.backward_bytes)} moved; largest intermediate {_bytes(t.largest)}, kept for backward "
        f"{_bytes(t.kept)}; estimated {_seconds(t.seconds)} forward + backward"
    ]


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} "


def _bytes(x: float) -> str:
    return f"{_si(x)}B"


def _seconds(x: float) -> str:
    return f"{x * 1e3:.3g} ms"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"
