"""Constant folding of ``fuse`` and every other evaluation of it compute the same numbers.

The plan evaluates a fuse along the cheapest tree, or folds the CG chains of its paths into one tensor, by the cost
model (``fdg.planning.fuse.planner``, ``fdg.planning.fuse.folding``). Here each candidate is pinned in each form and
compared with the plan's choice in float64 to 1e-10, with first and second derivatives; the folded tables are checked
against exact arithmetic, the decision against the estimates, and the tables against a change of dtype.
"""

from __future__ import annotations

import itertools
import math

import pytest
import sympy
import torch
from fuse_variants import fuse_node, pinned, variants
from module_inputs import random_inputs

import fdg
from fdg.runtime.fusion_paths import FuseSpec, fuse_layout
from fdg.runtime.fusion_tables import FuseTable, folded_table, fusion_table, path_tensor
from fdg.runtime.wigner import wigner_3j_exact

SOURCES = {
    "fusion block": (
        "diagram F(mul = 2) { input a : mul x (0e + 1o + 2e)\n input b : mul x (0e + 1o + 2e)\n"
        " input c : mul x (0e + 1o + 2e)\n output y = fuse(a, b, c) -> mul x (0e + 1o + 2e) }"
    ),
    "multiplicity one, learned[z]": (
        "diagram M(mul = 3) { input h : mul x (0e + 1o) over edge\n input v : 1o over edge\n"
        " input w : 0e + 1o + 2e over edge\n input z : index edge -> 3\n"
        " output y = fuse(h, sh(v, 2), w) -> mul x (0e + 1o + 1e + 2e) [weights = learned[z]] }"
    ),
    "multiplicity one, learned": (
        "diagram S(mul = 3) { input h : mul x (0e + 1o + 2e)\n input u : 0e + 1o + 2e\n input v : 0e + 1o\n"
        " output y = fuse(h, u, v) -> mul x (0e + 1o + 2e) }"
    ),
    "external weights": (
        "diagram E() { input a : 2x1o\n input b : 2x(0e + 1o)\n input c : 1o\n input R : weights\n"
        " output y = fuse(a, b, c) -> 2x0e + 2x1e + 2x2e [weights = R] }"
    ),
    "no weights": (
        "diagram N() { input a : 0e + 1o\n input b : 1o + 2e\n input c : 1o\n"
        " output y = fuse(a, b, c) -> 0e + 1e + 2e [weights = none] }"
    ),
    "four inputs": (
        "diagram Q() { input a : 2x(0e + 1o)\n input b : 2x1o\n input c : 1o\n input d : 2x(0e + 1o)\n"
        " output y = fuse(a, b, c, d) -> 2x0e + 2x1o + 2x1e }"
    ),
}


def _derivatives(module: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The output, its gradients (with graph) and second derivatives along fixed random directions."""
    floats = [t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs]
    leaves = [t for t in floats if t.requires_grad] + list(module.parameters())
    out = module(*floats)
    direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, direction, create_graph=True)
    second = torch.autograd.grad(torch.stack([(g * g).sum() for g in grads]).sum(), leaves)
    return [out, *grads, *second]


@pytest.mark.parametrize("case", sorted(SOURCES))
def test_every_evaluation_agrees_with_derivatives(case: str) -> None:
    forms = ("split", "sparse") if case == "four inputs" else ("dense", "split", "sparse")
    modules = variants(SOURCES[case], forms)
    assert len(modules) >= 1 + len(forms) * 2, "at least one tree and the folded tensor"
    inputs = list(random_inputs(modules["chosen"], generator=1).values())
    expected = _derivatives(modules["chosen"], inputs)
    assert expected[0].abs().max() > 0.1
    for name, module in modules.items():
        for got, want in zip(_derivatives(module, inputs), expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10, msg=name)


def _exact_chain(spec: FuseSpec, k: int) -> dict[tuple[int, ...], sympy.Expr]:
    """Path ``k`` of a three-input spec with tree ((0, 1), 2), contracted in exact arithmetic: sum over the
    intermediate component of products of the exact 3j entries (sign * sqrt(fraction)), times alpha."""
    lay = fuse_layout(spec)
    path = lay.paths[k]
    l0, l1, l2 = (lay.nodes[i].entries[e].ir.l for i, e in enumerate(path.leaves))
    (l12,), out = path.degrees, lay.outputs[path.i_out].l
    first, second = wigner_3j_exact(l0, l1, l12), wigner_3j_exact(l12, l2, out)
    alpha2 = sympy.Rational(2 * out + 1) * (2 * l12 + 1) / sum(p.i_out == path.i_out for p in lay.paths)
    found: dict[tuple[int, ...], sympy.Expr] = {}
    for (i, j, m), a in first.items():
        for (m2, k2, M), b in second.items():
            if m == m2:
                term = a.sign * b.sign * sympy.sqrt(sympy.Rational(a.square) * sympy.Rational(b.square))
                found[(i, j, k2, M)] = found.get((i, j, k2, M), 0) + term * sympy.sqrt(alpha2)
    return found


def test_folded_tensors_equal_exact_arithmetic() -> None:
    spec = FuseSpec(("1o", "1o + 2e", "1o"), "1o + 2e", ((0, 1), 2))
    for k, path in enumerate(fuse_layout(spec).paths):
        got = path_tensor(spec, path)
        exact = _exact_chain(spec, k)
        for index in itertools.product(*(range(d) for d in got.shape)):
            want = float(exact.get(index, 0))
            assert abs(float(got[index]) - want) <= 4e-16 * max(1.0, abs(want)), (k, index)


def test_folded_table_is_the_sum_of_its_paths_blocks() -> None:
    spec = FuseSpec(("0e+1o+2e",) * 3, "0e+1o+2e", ((0, 1), 2))
    dense = folded_table(spec).dense().reshape(9, 9, 9, -1)
    lay = fuse_layout(spec)
    leaves = lay.nodes[:3]
    for path in lay.paths:
        blocks = [
            slice(e.offset, e.offset + e.ir.dim) for e in (leaves[k].entries[i] for k, i in enumerate(path.leaves))
        ]
        block = dense[(*blocks, slice(path.offset, path.offset + lay.outputs[path.i_out].dim))]
        torch.testing.assert_close(block, path_tensor(spec, path), atol=0, rtol=0)
    assert (dense != 0).sum() == folded_table(spec).values.numel() < dense.numel() / 10


@pytest.mark.parametrize("case", sorted(SOURCES))
def test_folding_follows_the_estimates(case: str) -> None:
    plan = fdg.build(SOURCES[case]).plan
    f = plan.fusions[fuse_node(plan)]
    trees = {k: v for k, v in f.choice.seconds.items() if k != "folded"}
    assert f.evaluation.folded == (f.choice.seconds["folded"] < min(trees.values()))
    assert f.choice.chosen == min(f.choice.seconds, key=lambda k: (f.choice.seconds[k], k != f"tree {f.choice.basis}"))
    report = str(fdg.report(SOURCES[case]))
    assert f"fuse y: {'folded' if f.evaluation.folded else 'not folded'}" in report


def test_forcing_an_evaluation() -> None:
    plan = fdg.build(SOURCES["fusion block"]).plan
    f = pinned(plan, "folded", "sparse").fusions[fuse_node(plan)]
    assert f.evaluation.folded and f.evaluation.products[0].sparse
    f = pinned(plan, "tree (a, (b, c))", "dense").fusions[fuse_node(plan)]
    assert f.evaluation.spec.tree == (0, (1, 2)) and not any(p.sparse or p.split for p in f.evaluation.products)
    assert f.evaluation.recouple > 0 and f.buffers.recouple is not None  # the weights belong to ((a, b), c)


def test_tables_are_rederived_exactly_on_a_dtype_change() -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        for form in ("dense", "sparse"):
            plan = pinned(fdg.build(SOURCES["fusion block"]).plan, "folded", form)
            module = fdg.runtime.load_source(fdg.codegen.emit_module(plan, "test"), "F")()
            assert all(b.dtype == torch.float32 for b in module.buffers() if b.is_floating_point())
            module = module.double()
            spec = plan.fusions[fuse_node(plan)].evaluation.spec
            for buffer in plan.fusions[fuse_node(plan)].buffers.all:
                values, _ = fusion_table(spec, buffer.table, dtype=torch.float64)
                if values is not None:
                    assert torch.equal(getattr(module, buffer.name), values)
    finally:
        torch.set_default_dtype(previous)


def test_folded_weights_fold_every_path_once() -> None:
    spec = FuseSpec(("0e+1o+2e",) * 3, "0e+1o+2e", ((0, 1), 2))
    values, index = fusion_table(spec, FuseTable("folded", sparse=True, weights=True), dtype=torch.float64)
    assert values is not None and index is not None
    per_path = torch.bincount(index[0], minlength=len(fuse_layout(spec).paths))
    nonzeros = [int((path_tensor(spec, p) != 0).sum()) for p in fuse_layout(spec).paths]
    assert per_path.tolist() == nonzeros
    assert math.isclose(
        float(values.pow(2).sum()), sum(float(path_tensor(spec, p).pow(2).sum()) for p in fuse_layout(spec).paths)
    )


def test_recoupled_sparse_evaluation_under_torch_compile() -> None:
    """The runtime pieces the default plans rarely pick (sparse products, recoupled weights) trace whole too."""
    plan = pinned(fdg.build(SOURCES["fusion block"]).plan, "tree (a, (b, c))", "sparse")
    assert plan.fusions[fuse_node(plan)].buffers.recouple is not None
    module = fdg.runtime.load_source(fdg.codegen.emit_module(plan, "test"), "F")().double()
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager", dynamic=True)
    inputs = random_inputs(module)
    torch.testing.assert_close(compiled(**inputs), module(**inputs), atol=1e-12, rtol=1e-12)
