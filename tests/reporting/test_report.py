"""The cost report: FLOP counts checked against hand counts, the lowering choice, the CLI and JSON forms."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sources import CONV_SOURCE

import fdg
from fdg.cli import main
from fdg.cost import steps
from fdg.planning.grouping import group

# one path: 4x1o (x) 1o -> 4x0e, channel-wise, per-row weights
SMALL = """
diagram Small() {
    input a : 4x1o over edge
    input b : 1o over edge
    input R : weights over edge
    output y = couple(a, b) -> 4x0e [mode = uvu, weights = R]
}
"""


def test_flops_of_a_single_path_by_hand() -> None:
    r = fdg.report(SMALL, sizes={"edge": 10})
    # baseline, left to right: a (x) b outer product 4*3*3 = 36 products; with the dense CG (3x3x1) 36 multiply-adds
    # = 72 FLOPs; with the weights 4 multiply-adds (v summed) = 8 FLOPs; one path, nothing to add
    assert [s.flops for s in r.baseline_steps] == [36, 72, 8, 0]
    # backward: each step feeds gradients to its operands except the CG, each costing about a forward
    assert [s.backward_flops for s in r.baseline_steps] == [72, 72, 16, 0]
    # dense, in opt_einsum's order: b with the CG first (9 multiply-adds), then a (12), then the weights (4)
    plan = fdg.build(SMALL).plan
    (node,) = plan.contractions
    op, (a, b) = plan.diagram.op(node), [plan.diagram.out(n) for n in plan.diagram.operands(node)[:2]]
    assert [s.flops for s in steps.dense("y", op, [a, b], plan.contractions[node], "edge")] == [18, 24, 8, 0]
    assert r.baseline.flops == 10 * 116
    # grouped: b @ K with K 3x3 (9 multiply-adds), a [1x3] @ [3x4] matmul (12 multiply-adds), then the weights on its
    # 1x4 result (4 products, fewer than on the 3x4 channels of a): 46 FLOPs; reordering a and the result between
    # the mul_ir and ir_mul layouts moves data only
    g = group(op, a, b)
    assert g is not None
    grouped = steps.grouped("y", op, a, g, "edge")
    assert [s.flops for s in grouped] == [18, 0, 4 + 24, 0]
    assert grouped[1].bytes == 2 * 4 * 12  # a (4x1o) read and written once
    assert grouped[-1].bytes == 4 * 4 * 4  # the 4x0e result: concatenated, then reordered
    # fused: the same b @ K, then one kernel call: per channel a multiply-add for each of the 3 non-zero columns of
    # the coupling matrix (1o x 1o -> 0e: every i contributes to k = 0) and one for the weights on the single output
    # component, 2 * 4 * (3 + 1) = 32 FLOPs; it reads a (12), the matrix (3), the weights (4), writes y (4); the
    # backward is three such calls
    fused = steps.grouped("y", op, a, dataclasses.replace(g, fused=True), "edge")
    assert [s.flops for s in fused] == [18, 32]
    assert fused[1].bytes == 4 * (12 + 3 + 4 + 4) and fused[1].backward_flops == 3 * 32


def test_linear_flops_and_bytes_by_hand() -> None:
    r = fdg.report("diagram L() { input x : 8x1o over node\n output y = linear(x) -> 2x1o }", sizes={"node": 5})
    step, _ = r.steps
    assert step.what == "zui,uw->zwi"
    assert step.flops == 2 * 8 * 2 * 3  # multiply-adds u * w * i, 2 FLOPs each
    assert step.bytes == 4 * (8 * 3 + 2 * 3)  # reads x's block, writes the result; the weights are not per row
    assert r.parameters == 16
    assert r.plan.largest == 5 * 6 * 4


def test_conv_plan_is_fused_and_a_third_of_the_baseline() -> None:
    r = fdg.report(CONV_SOURCE, sizes={"edge": 20000})
    assert r.choices["y"].lowering == "fused"
    assert r.plan.flops <= r.baseline.flops / 3
    assert r.speedup > 1
    assert r.external == {"R": 480}


def test_fully_connected_coupling_stays_dense() -> None:
    source = "diagram F() { input a : 8x1o\n input b : 8x1o\n output y = couple(a, b) -> 8x0e [mode = uvw] }"
    r = fdg.report(source)
    assert r.choices == {}
    # per-path einsums; those between two per-row operands priced at the rate of small batched matmuls
    assert {s.lowering for s in r.steps} == {"dense", "batched", "elementwise"}


def test_module_carries_the_report_of_its_own_plan() -> None:
    # a module built with a pin reports the pinned lowering: the report is of the plan this module was emitted from
    fused, grouped = fdg.compile(CONV_SOURCE, mul=4), fdg.compile(CONV_SOURCE, mul=4, pin={"y": "grouped"})
    assert (fused.report.choices["y"].lowering, fused.report.choices["y"].pinned) == ("fused", False)
    assert (grouped.report.choices["y"].lowering, grouped.report.choices["y"].pinned) == ("grouped", True)
    assert grouped.report.choices["y"].seconds == fused.report.choices["y"].seconds
    assert "lowering of y: grouped, pinned" in str(grouped.report)


def test_cli_text_and_json(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "conv.fdg"
    path.write_text(CONV_SOURCE)
    assert main(["report", str(path), "--size", "edge=100"]) == 0
    text = capsys.readouterr().out
    assert "Conv(mul=32, lmax=2) at edge=100" in text and "baseline (dense CG" in text
    assert main(["report", str(path), "--size", "edge=100", "--json", "-p", "mul=4"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["sizes"] == {"edge": 100}
    assert found["plan"]["totals"]["forward_flops"] == fdg.report(CONV_SOURCE, sizes={"edge": 100}, mul=4).plan.flops
    assert found["choices"]["y"]["lowering"] == "fused"


@pytest.mark.parametrize("size", ["node=10", "edge=0", "edge", "edge=x"])
def test_cli_bad_sizes_exit_2(size: str, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "conv.fdg"
    path.write_text(CONV_SOURCE)
    try:  # argparse exits 2 on a malformed size; an unknown axis is reported with status 2 too
        status = main(["report", str(path), "--size", size])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    assert "edge" in capsys.readouterr().err
