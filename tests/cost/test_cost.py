"""``fdg.cost``: priced steps counted by hand (FLOPs, bytes, results, backward), totals at sizes, the time estimate.

Conventions (``fdg.cost.model``): a multiply-add is 2 FLOPs and a product with nothing summed 1; bytes count the
batched tensors a step reads and writes, 4 bytes an element; a backward computes one gradient per operand needing
one (data and weights, never CG tensors), each about the forward's cost.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fdg import api, cost
from fdg.cost import steps
from fdg.cost.model import BANDWIDTH, FLOP_RATE, LAUNCH, Step
from fdg.planning.plan import Plan, make_plan

ROOT = Path(__file__).resolve().parents[2]


def plan_of(source: str) -> Plan:
    return make_plan(api.lower_source(source))


def priced(s: Step) -> tuple[str, float, float, int, float, float]:
    return s.what, s.flops, s.bytes, s.out, s.backward_flops, s.backward_bytes


# ------------------------------------------------------------------ one contraction


def test_outer_product_contraction() -> None:
    """``zui,zvj->zuvij`` with u=2, i=1, v=3, j=3: 18 products, nothing summed (1 FLOP each); reads 2 + 9 and
    writes 18 elements per row; two data operands, so the backward is twice the forward."""
    s = cost.contraction("y", "zui,zvj->zuvij", {"z": 1, "u": 2, "i": 1, "v": 3, "j": 3}, grads=2, axis="edge")
    assert (s.axis, s.lowering, s.flops, s.bytes, s.out) == ("edge", "dense", 18, 4 * (2 + 9 + 18), 18)
    assert (s.backward_flops, s.backward_bytes, s.launches, s.chunk) == (36, 2 * 4 * 29, 1, 0)


def test_contraction_with_shared_weights() -> None:
    """``zui,uw->zwi`` u=4, w=2, i=3: 24 multiply-adds = 48 FLOPs; the weights are not batched, so only 12 + 6 move."""
    s = cost.contraction("y", "zui,uw->zwi", {"z": 1, "u": 4, "w": 2, "i": 3}, grads=1, axis="node")
    assert (s.flops, s.bytes, s.out, s.backward_flops, s.backward_bytes) == (48, 72, 6, 48, 72)


def test_batch_independent_contraction() -> None:
    """Weights times a CG tensor (no batch index): work independent of the rows, nothing batched moves."""
    s = cost.contraction("y", "ijk,uv->uvijk", {"u": 2, "v": 1, "i": 3, "j": 3, "k": 1}, grads=1, axis="node")
    assert (s.axis, s.flops, s.bytes, s.out) == ("", 18, 0, 0)
    assert cost.rows(s, {"node": 1000}) == 1


# ------------------------------------------------------------------ the steps of a vertex

COUPLE = (
    "diagram D() { input a : 2x1o over node\n input b : 1o over node\n output y = couple(a, b) -> 2x0e [mode = uvu] }"
)


def test_baseline_is_left_to_right_by_hand() -> None:
    """``2x1o (x) 1o -> 2x0e`` uvu, one path (u=2, v=1, i=j=3, k=1), naive order ((a b) CG) w:
    a x b: 18 products; x CG: 18 multiply-adds (36 FLOPs), the CG needs no gradient (1 grad); x w: 2 x 1 multiply-adds
    (4 FLOPs), 2 grads; then the path sum (nothing to add, one output block)."""
    baseline = plan_of(COUPLE).baseline["y"]
    assert [priced(s) for s in baseline] == [
        ("zui,zvj->zuivj", 18, 4 * (6 + 3 + 18), 18, 2 * 18, 2 * 4 * 27),
        ("zuivj,ijk->zuvk", 36, 4 * (18 + 2), 2, 36, 4 * 20),
        ("zuvk,uv->zuk", 4, 4 * (2 + 2), 2, 8, 2 * 4 * 4),
        ("sum paths, cat -> [2]", 0, 2 * 4 * 2, 2, 0, 2 * 4 * 2),
    ]
    assert all(s.axis == "node" and s.value == "y" for s in baseline)


def test_weights_none_needs_fewer_gradients() -> None:
    """Without weights ``v`` is summed at once (no later operand holds it): a x b (18 multiply-adds, 2 grads), then
    x CG (1 grad: a CG tensor has no gradient), and no weights step."""
    baseline = plan_of(COUPLE.replace("mode = uvu", "mode = uvu, weights = none")).baseline["y"]
    assert [(s.what, s.flops, s.backward_flops) for s in baseline[:-1]] == [
        ("zui,zvj->zuij", 36, 2 * 36),
        ("zuij,ijk->zuk", 36, 36),  # 2 x 3 x 3 x 1 multiply-adds
    ]


def test_dense_linear_by_hand() -> None:
    """``4x1o -> 2x1o``: 4 x 2 x 3 multiply-adds (48 FLOPs), gradients of x and of the weights."""
    dense = plan_of("diagram D() { input x : 4x1o over node\n output y = linear(x) -> 2x1o }").steps["y"]
    assert [priced(s) for s in dense] == [
        ("zui,uw->zwi", 48, 4 * (12 + 6), 6, 96, 2 * 4 * 18),
        ("sum paths, cat -> [6]", 0, 2 * 4 * 6, 6, 0, 2 * 4 * 6),
    ]


def test_path_sum_counts_the_additions() -> None:
    """Two paths into 2x0e (0e x 0e, 1o x 1o) and two into 2x1o (0e x 1o, 1o x 0e), one into 2x1e: 2 + 6 + 0 extra
    additions per row, reading and writing the 14 outputs, one launch per output block."""
    source = (
        "diagram D() { input a : 2x0e + 2x1o\n input b : 0e + 1o\n"
        " output y = couple(a, b) -> 2x0e + 2x1o + 2x1e [mode = uvu] }"
    )
    *_, assemble = plan_of(source).baseline["y"]
    assert (assemble.flops, assemble.bytes, assemble.out, assemble.launches) == (2 + 6 + 0, 2 * 4 * 14, 14, 3)


def test_simple_vertices() -> None:
    """Gather, scatter-sum (priced per row of the edges it reads), add, scale, sh (one CG recursion step for l=2)."""
    source = """diagram D() {
        input x : 2x0e + 1o over node
        input v : 1o over edge
        input i : index edge -> node
        g = x[i]
        s = sum(g, by = i)
        t = s + x
        output y = 0.5 * t
        output Y = sh(v, 2)
    }"""
    plan = plan_of(source)
    by_value = {plan.names[n]: st for n, st in plan.steps.items()}
    assert [(priced(s), s.axis, s.lowering) for s in by_value["g"]] == [
        (("index_select [5]", 0, 40, 5, 5, 60), "edge", "gather")
    ]
    assert [(priced(s), s.axis, s.lowering) for s in by_value["s"]] == [
        (("index_add [5]", 5, 60, 0, 0, 40), "edge", "scatter")
    ]
    assert [priced(s) for s in by_value["t"]] == [("add x2 [5]", 5, 60, 5, 0, 60)]
    assert [priced(s) for s in by_value["y"]] == [("scale [5]", 5, 40, 5, 5, 40)]
    sh = by_value["Y"][0]
    flops = 2 * 3 * 3 * 5 + 3  # l = 2 from l = 1: [3] x [3] -> [5], 2 FLOPs a product; plus the 3 of l = 1
    assert (sh.what, sh.flops, sh.bytes, sh.out, sh.launches) == ("sh(lmax=2)", flops, 4 * (3 + 9), 9, 4)


# ------------------------------------------------------------------ totals and time


def test_evaluate_multiplies_by_the_rows() -> None:
    baseline = plan_of(COUPLE).baseline["y"]
    t = cost.evaluate(baseline, {"node": 10})
    assert (t.flops, t.bytes) == (10 * (18 + 36 + 4 + 0), 10 * 4 * (27 + 20 + 4 + 4))
    assert (t.backward_flops, t.backward_bytes) == (10 * (36 + 36 + 8), 10 * 4 * (54 + 20 + 8 + 4))
    assert (t.largest, t.kept) == (4 * 18 * 10, 4 * (18 + 2 + 2 + 2) * 10)
    assert t.seconds == pytest.approx(sum(cost.seconds(s, {"node": 10}) for s in baseline), rel=1e-15)
    assert cost.evaluate((), {"node": 10}).largest == 0


def test_seconds_by_the_formula() -> None:
    s = Step("y", "x", "dense", "node", 100, 40, 10, 200, 80, launches=2)
    want = 300 * 50 / FLOP_RATE["dense"] + 120 * 50 / BANDWIDTH + 3 * 2 * LAUNCH
    assert cost.seconds(s, {"node": 50}) == pytest.approx(want, rel=1e-15)
    assert cost.seconds(s, {"edge": 50}) == pytest.approx(300 / FLOP_RATE["dense"] + 120 / BANDWIDTH + 6 * LAUNCH)


def test_seconds_grow_with_rows() -> None:
    baseline = plan_of(COUPLE).baseline["y"]
    times = [cost.evaluate(baseline, {"node": n}).seconds for n in (1, 10, 100, 1000, 10**5)]
    assert times == sorted(times) and len(set(times)) == len(times)
    fixed = Step("y", "w x cg", "dense", "", 100, 0, 0, 100, 0)
    assert cost.seconds(fixed, {"node": 1}) == cost.seconds(fixed, {"node": 10**6})


def test_chunked_steps_launch_per_slice_and_keep_one_slice() -> None:
    s = Step("y", "bmm", "grouped", "edge", 10, 8, 6, 20, 16, launches=2, chunk=4096)
    assert [cost.launches(s, {"edge": n}) for n in (1, 4096, 4097, 3 * 4096)] == [2, 2, 4, 6]
    assert cost.evaluate((s,), {"edge": 10000}).largest == 6 * 4096 * 4  # one slice at a time
    assert cost.evaluate((s,), {"edge": 10000}).kept == 6 * 10000 * 4


def test_grouped_fused_is_one_kernel_call() -> None:
    """The fused lowering: the coupling matrix of b (a [3 x 3] matmul, 2 x 3 x 3 FLOPs), then one native call."""
    plan = make_plan(api.lower_source(COUPLE))
    assert plan.lowered["y"].lowering == "fused"
    matrix, kernel = plan.steps["y"]
    assert (matrix.what, matrix.lowering, matrix.flops, matrix.bytes, matrix.chunk) == ("b @ K [3x3]", "mm", 18, 24, 0)
    assert (kernel.lowering, kernel.out, kernel.backward_flops) == ("native", 2, 3 * kernel.flops)


def test_every_step_of_the_shipped_diagrams_has_a_rate() -> None:
    for path in sorted((ROOT / "diagrams").glob("*.fdg")):
        for d in api.library(path).root.diagrams:
            plan = make_plan(api.lower_source(path, d.name.id))
            for s in (s for st in [*plan.steps.values(), *plan.baseline.values()] for s in st):
                assert s.lowering in FLOP_RATE, (path.name, s)
                assert min(s.flops, s.bytes, s.out, s.backward_flops, s.backward_bytes) >= 0, (path.name, s)


def test_steps_module_prices_the_vertex_it_is_given() -> None:
    """``steps.dense`` on the plan's contractions is what the plan holds."""
    plan = plan_of("diagram D() { input x : 4x1o over node\n output y = linear(x) -> 2x1o }")
    op, x = plan.diagram.op("y"), plan.diagram.out("x")
    assert steps.dense("y", op, [x], plan.contractions["y"], "node") == plan.steps["y"]
