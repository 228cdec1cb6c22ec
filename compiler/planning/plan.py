"""The plan: every decision codegen needs, computed once from the optimized IR.

It fixes the Python name of every value, the CG buffers (one per ``(l1, l2, l3)``, named
``cg_{l1}_{l2}_{l3}``), the learned parameters and their shapes, where each axis size comes from,
for every CG path the pairwise contraction order, and for every coupling its *lowering*: ``dense``
(one einsum per path) or ``grouped`` (batched matmuls per block of paths, ``grouping.py``; its CG
tensors meet ``b`` by a matmul or entry by entry, ``grouped+sparse``), whichever
the cost model (``fdg.cost``) estimates faster at :data:`REPRESENTATIVE_ROWS` rows.  The pairwise order
comes from ``opt_einsum.contract_path`` ("optimal") on the path's shapes; it does not depend on the
batch size for these networks, where the batch index is carried by every data operand.  The plan
also keeps the priced steps of the chosen lowering and of the naive baseline, which the report
reads.  Codegen only reads this value; it never searches again.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, field, replace

import opt_einsum

from fdg import cost, ir
from fdg.cost import steps
from fdg.ir import GENERATED
from fdg.planning.fuse.planner import FusePlan, plan_fuse
from fdg.planning.grouping import Grouped, group
from fdg.planning.power import PowerPlan, plan_power

#: batch size used to choose contraction orders
REPRESENTATIVE_BATCH = 1024
#: rows (of every axis) at which lowerings are compared
REPRESENTATIVE_ROWS = 10000


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


@dataclass(frozen=True)
class Parameter:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    diagram: ir.Diagram
    order: tuple[str, ...]
    names: dict[str, str]  # node id -> Python identifier
    cg: dict[str, tuple[int, int, int]]  # buffer name -> (l1, l2, l3)
    parameters: dict[str, Parameter]  # node id -> its learned parameter
    contractions: dict[str, tuple[Contraction, ...]]  # node id -> per path
    sizes: dict[str, str]  # axis name -> expression giving its size in forward
    grouped: dict[str, Grouped]  # couple node id -> its blocks, when lowered grouped
    steps: dict[str, tuple[cost.Step, ...]]  # node id -> priced steps of the chosen lowering
    baseline: dict[str, tuple[cost.Step, ...]]  # node id -> priced steps of the naive baseline
    choices: dict[str, Choice]  # couple node id -> why its lowering was chosen
    fusions: dict[str, FusePlan] = field(default_factory=dict)  # fuse node id -> its evaluation (fusion.py)
    powers: dict[str, PowerPlan] = field(default_factory=dict)  # power node id -> its module and steps


@dataclass(frozen=True)
class Choice:
    """The lowering chosen for a coupling, the estimated time of each candidate, and where the choice flips."""

    lowering: str
    seconds: dict[str, float]  # candidate -> estimated forward + backward seconds at REPRESENTATIVE_ROWS rows
    crossover: int | None  # the chosen lowering is estimated faster from this many rows on (None: at every size)
    below: str | None = None  # the candidate estimated fastest below the crossover
    per_call: bool = False  # the module picks between ``below`` and ``lowering`` per call, by its number of rows


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


def _couple(op: ir.Couple, a: ir.Feature, b: ir.Feature, batched_weights: bool) -> tuple[Contraction, ...]:
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


def _linear(op: ir.Linear, x: ir.Feature, batched_weights: bool) -> tuple[Contraction, ...]:
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


class _Namer:
    """Python identifiers for values: the user's name where possible, never clashing, never a keyword."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken) | GENERATED

    def __call__(self, wanted: str) -> str:
        base = wanted.lstrip("_") or "t"
        base = base if base.isidentifier() and not keyword.iskeyword(base) else f"t_{base}"
        if base[0].isdigit():
            base = f"t{base}"
        name, n = base, 1
        while name in self.taken or keyword.iskeyword(name):
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def make_plan(diagram: ir.Diagram) -> Plan:
    """Decide names, buffers, parameters and contraction orders for a checked, optimized diagram."""
    order = diagram.order()
    inputs = diagram.inputs()
    namer = _Namer(set(inputs))
    names = {node: node for node in inputs}
    for node in order:
        if node not in names and not isinstance(diagram.op(node), ir.Output):
            names[node] = namer(node)
    cg: dict[str, tuple[int, int, int]] = {}
    parameters: dict[str, Parameter] = {}
    contractions: dict[str, tuple[Contraction, ...]] = {}
    sizes: dict[str, str] = {}
    grouped: dict[str, Grouped] = {}
    priced: dict[str, tuple[cost.Step, ...]] = {}
    baseline: dict[str, tuple[cost.Step, ...]] = {}
    choices: dict[str, Choice] = {}
    fusions: dict[str, FusePlan] = {}
    powers: dict[str, PowerPlan] = {}
    for node in inputs:
        out = diagram.out(node)
        axis = out.axis
        sizes.setdefault(axis.name, f"{node}.shape[0]")
    for node in order:
        op = diagram.op(node)
        if isinstance(op, ir.Power):  # planning/power.py: a fdg.runtime.SymmetricPower submodule and its priced steps
            a = diagram.out(diagram.operands(node)[0])
            assert isinstance(a, ir.Feature)
            powers[node] = plan_power(names[node], op, a, namer(f"{names[node]}_power"))
            priced[node], baseline[node] = powers[node].steps, powers[node].baseline
            if op.weights.kind in ("learned", "per_index"):
                shape = (op.weights.numel,) if op.weights.kind == "learned" else (op.weights.count, op.weights.numel)
                parameters[node] = Parameter(namer(f"{names[node]}_weight"), shape)
            continue
        if isinstance(op, ir.Fuse):  # fusion.py: the tree (or folded tensor) and its products
            operands = [diagram.out(n) for n in diagram.operands(node)]
            fusions[node] = plan_fuse(names[node], op, operands, namer, REPRESENTATIVE_ROWS)
            priced[node], baseline[node] = fusions[node].evaluation.steps, fusions[node].baseline
            if op.weights.kind in ("learned", "per_index"):
                shape = (op.weights.numel,) if op.weights.kind == "learned" else (op.weights.count, op.weights.numel)
                parameters[node] = Parameter(namer(f"{names[node]}_weight"), shape)
            continue
        if isinstance(op, ir.ScatterSum):
            target = diagram.out(node)
            assert isinstance(target, ir.Feature)
            if target.axis.size is not None:
                sizes.setdefault(target.axis.name, str(target.axis.size))
        out = diagram.out(node)
        operands = [diagram.out(n) for n in diagram.operands(node)]
        if isinstance(op, ir.Couple | ir.Linear):
            assert isinstance(out, ir.Feature)
            axis = out.axis.name
            batched = op.weights.kind in ("input", "per_index")
            features = [t for t in operands if isinstance(t, ir.Feature)][: 2 if isinstance(op, ir.Couple) else 1]
            if isinstance(op, ir.Couple):
                a, b = features
                contractions[node] = _couple(op, a, b, batched)
                dense = steps.dense(names[node], op, features, contractions[node], axis)
                candidate = group(op, a, b)
                lowered = None
                if candidate is not None:
                    variants = {"grouped": candidate, "grouped+sparse": replace(candidate, sparse=True)}
                    if candidate.mode == "uvu":
                        variants["fused"] = replace(candidate, fused=True)
                    candidates = {"dense": dense}
                    candidates |= {name: steps.grouped(names[node], op, a, g, axis) for name, g in variants.items()}
                    choice = _choose(candidates)
                    choices[node] = choice
                    # the grouped variant the module holds: the chosen one, or the one it switches to per call
                    variant = choice.below if choice.per_call and choice.lowering == "dense" else choice.lowering
                    if variant in variants:
                        lowered = replace(
                            variants[variant],
                            method=namer(f"{names[node]}_slice"),
                            matrix=namer(f"{names[node]}_cg"),
                            layout_a=namer(f"{names[node]}_cg_a"),
                            layout_y=namer(f"{names[node]}_cg_y"),
                            table=namer(f"{names[node]}_cg_table"),
                        )
                if lowered is not None:
                    grouped[node] = lowered
                if lowered is not None and choices[node].lowering != "dense":
                    priced[node] = steps.grouped(names[node], op, a, lowered, axis)
                else:
                    priced[node] = dense
                if lowered is None or choices[node].per_call:  # the dense lowering's CG tensors
                    for c in contractions[node]:
                        assert c.cg is not None
                        cg[c.cg] = (a.irreps[c.i_in[0]].ir.l, b.irreps[c.i_in[1]].ir.l, op.irreps_out[c.i_out].ir.l)
            else:
                contractions[node] = _linear(op, features[0], batched)
                priced[node] = steps.dense(names[node], op, features, contractions[node], axis)
            baseline[node] = steps.baseline(names[node], op, features, contractions[node], axis)
            if op.weights.kind in ("learned", "per_index"):
                shape = (op.weights.numel,) if op.weights.kind == "learned" else (op.weights.count, op.weights.numel)
                parameters[node] = Parameter(namer(f"{names[node]}_weight"), shape)
        elif isinstance(out, ir.Feature) and not isinstance(op, ir.Input):
            priced[node] = baseline[node] = steps.simple(names[node], op, out, operands)
    return Plan(
        diagram,
        tuple(order),
        names,
        dict(sorted(cg.items())),
        parameters,
        contractions,
        sizes,
        grouped,
        priced,
        baseline,
        choices,
        fusions,
        powers,
    )


def _choose(candidates: dict[str, tuple[cost.Step, ...]]) -> Choice:
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
