"""The passes of ``fdg.passes``: each one's exact change to the IR, the cases it must leave alone, and numbers.

Diagrams are lowered without the passes (``checker.lower.lower``), so each pass is applied on its own here.  A module
built from the unoptimized IR (plan + codegen directly) must compute what ``fdg.compile`` (which runs the passes)
computes, with the same weights.
"""

from __future__ import annotations

import pytest
import torch
from module_inputs import random_inputs

import fdg
from fdg import api, ir, passes
from fdg.checker.lower import lower
from fdg.codegen import emit_module
from fdg.ir.verify import check_ir
from fdg.passes.fold_scale import fold_scale
from fdg.passes.prune import prune
from fdg.planning.plan import make_plan
from fdg.runtime import FdgModule, load_source


def raw(source: str) -> ir.Diagram:
    """The checked IR before any pass."""
    files = api.library(source)
    diagram = lower(files.root, None, {}, files).diagram
    check_ir(diagram)
    return diagram


def snapshot(d: ir.Diagram) -> tuple[list[object], list[object]]:
    return list(d.graph.nodes(data=True)), sorted(d.graph.edges(keys=True, data="port"))


def unoptimized_module(source: str) -> FdgModule:
    """A module compiled from the IR as the checker leaves it, skipping the passes."""
    plan = make_plan(raw(source))
    return load_source(emit_module(plan, "test"), plan.diagram.name)()


# ------------------------------------------------------------------ PASSES and run


def test_passes_are_prune_then_fold_scale() -> None:
    assert [name for name, _ in passes.PASSES] == ["prune", "fold_scale"]


def test_run_checks_after_every_pass() -> None:
    seen: list[int] = []
    d = raw("diagram D() { input x : 0e\n u = 3 * x\n output y = 0.5 * (2 * x) }")
    out = passes.run(d, lambda diagram: seen.append(diagram.graph.number_of_nodes()))
    assert seen == [4, 3]  # x u _y_1 y out:y -> prune drops u -> fold_scale drops _y_1
    assert list(out.graph.nodes) == ["x", "y", "out:y"]


def test_prune_runs_first_so_an_unused_reader_does_not_block_folding() -> None:
    """``s`` has an unused second consumer; only once prune removes it can fold_scale merge the two scalings."""
    d = raw("diagram D() { input x : 0e\n s = 2 * x\n unused = 3 * s\n output y = 0.5 * s }")
    assert fold_scale(d) is d
    folded = passes.run(d)
    assert set(folded.graph.nodes) == {"x", "y", "out:y"}
    assert folded.op("y") == ir.Scale(1.0, folded.op("y").span)


# ------------------------------------------------------------------ prune

PRUNABLE = """diagram D() {
    input x : 2x0e + 1o
    input w : 0e
    u = linear(x) -> 3x0e
    v = 2 * u
    y = linear(x) -> 2x0e + 1o
    output out = y + x
}"""


def test_prune_removes_exactly_the_dead_vertices() -> None:
    """``u`` and ``v`` feed no output and go, with their edges; unused input ``w`` stays; the rest is untouched."""
    d = raw(PRUNABLE)
    before = snapshot(d)
    pruned = prune(d)
    assert set(d.graph.nodes) - set(pruned.graph.nodes) == {"u", "v"}
    assert list(pruned.graph.nodes) == ["x", "w", "y", "out", "out:out"]
    assert sorted(pruned.graph.edges(data="port")) == [("out", "out:out", 0), ("x", "out", 1), ("x", "y", 0),
                                                       ("y", "out", 0)]  # fmt: skip
    assert all(pruned.graph.nodes[n] == d.graph.nodes[n] for n in pruned.graph.nodes)
    assert snapshot(d) == before  # pure: the input diagram is not modified
    check_ir(pruned)


def test_prune_keeps_everything_live() -> None:
    """Nothing dead: the very same diagram comes back; unused inputs are the signature and are never pruned."""
    d = raw("diagram D() { input x : 0e\n input unused : 1o\n a = 2 * x\n output y = a + x }")
    assert prune(d) is d
    assert [d.op(n).name for n in prune(d).inputs()] == ["x", "unused"]


def test_prune_does_not_rename_kept_weights() -> None:
    """Removing a dead learned vertex leaves the names (state_dict keys) of the others as they were."""
    with pytest.warns(fdg.FdgWarning, match="never used"):
        module = fdg.compile(PRUNABLE)
    assert sorted(module.state_dict()) == ["y_weight"]
    assert sorted(unoptimized_module(PRUNABLE).state_dict()) == ["u_weight", "y_weight"]


# ------------------------------------------------------------------ fold_scale


def test_fold_scale_merges_two_scalings() -> None:
    d = raw("diagram D() { input x : 0e + 1o\n output y = 0.5 * (4 * x) }")
    assert [d.op(n) for n in d.order()][1:3] == [ir.Scale(4.0, d.op("_y_1").span), ir.Scale(0.5, d.op("y").span)]
    folded = fold_scale(d)
    assert list(folded.graph.nodes) == ["x", "y", "out:y"]
    assert folded.op("y").factor == 2.0
    assert folded.operands("y") == ["x"]
    assert list(folded.graph.in_edges("y", data="port")) == [("x", "y", 0)]
    assert folded.graph.edges["x", "y", 0]["wire"] == d.out("x")
    assert set(d.graph.nodes) == {"x", "_y_1", "y", "out:y"}  # pure
    check_ir(folded)


def test_fold_scale_collapses_a_chain() -> None:
    d = raw("diagram D() { input x : 0e\n output y = 0.5 * (2 * (3 * x)) }")
    folded = fold_scale(d)
    assert list(folded.graph.nodes) == ["x", "y", "out:y"]
    assert folded.op("y").factor == 3.0


def test_fold_scale_keeps_a_scaling_read_elsewhere() -> None:
    """``s`` is read by ``y`` and output as ``z``: folding it into ``y`` would lose ``z``."""
    d = raw("diagram D() { input x : 0e + 1o\n s = 2 * x\n output y = 0.5 * s\n output z = s }")
    assert fold_scale(d) is d


def test_fold_scale_leaves_single_scalings_and_other_vertices() -> None:
    d = raw("diagram D() { input x : 2x0e\n a = linear(x) -> 2x0e\n b = 2 * a\n output y = linear(b) -> 2x0e }")
    assert fold_scale(d) is d


def test_fold_scale_keeps_a_unit_factor() -> None:
    """Folding to 1.0 keeps the vertex (the pass merges chains; it does not drop identity scalings)."""
    folded = fold_scale(raw("diagram D() { input x : 0e\n output y = 0.5 * (2 * x) }"))
    assert [type(folded.op(n)).__name__ for n in folded.order()] == ["Input", "Scale", "Output"]
    assert folded.op("y").factor == 1.0


# ------------------------------------------------------------------ numbers

NETWORK = """diagram N() {
    input x : 2x0e + 2x1o
    input v : 1o
    dead = linear(x) -> 2x0e
    s = 0.25 * (2 * x)
    m = couple(s, sh(v, 1)) -> 2x0e + 2x1o [mode = uvu]
    output y = 3 * (0.5 * m)
}"""

HAND_FOLDED = """diagram N() {
    input x : 2x0e + 2x1o
    input v : 1o
    m = couple(0.5 * x, sh(v, 1)) -> 2x0e + 2x1o [mode = uvu]
    output y = 1.5 * m
}"""


def _outputs(module: FdgModule, reference: FdgModule) -> torch.Tensor:
    module.double()
    module.load_state_dict(dict(reference.named_parameters()), strict=False)
    return module(**random_inputs(reference, generator=3))


def test_passes_preserve_the_numbers() -> None:
    """With and without the passes, and against the folding done by hand, the outputs agree (float64)."""
    with pytest.warns(fdg.FdgWarning, match="never used"):
        optimized = fdg.compile(NETWORK).double()
    lowered = api.lower_source(NETWORK)  # the IR after the passes: two scalings left, each folded from two
    assert [op.factor for op in map(lowered.op, lowered.order()) if isinstance(op, ir.Scale)] == [0.5, 1.5]
    expected = _outputs(optimized, optimized)
    for other in (unoptimized_module(NETWORK), fdg.compile(HAND_FOLDED)):
        torch.testing.assert_close(_outputs(other, optimized), expected, rtol=1e-12, atol=1e-12)
    # and the numbers are not trivially equal: the weights matter
    assert expected.abs().max() > 1e-3
