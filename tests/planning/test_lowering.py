"""Every lowering of a coupling computes the same numbers: dense, grouped, grouped with sparse CG arithmetic.

The plan picks one lowering by the cost model; here each is pinned in turn and compared with
the dense one in float64, with first and second derivatives.  ``test_e3nn_parity.py`` ties the chosen one to e3nn.
"""

from __future__ import annotations

import pytest
import torch
from module_inputs import random_inputs
from sources import CONV_SOURCE, NODE_SOURCE

import fdg
from fdg.codegen import emit_module
from fdg.planning.pin import Pin
from fdg.planning.plan import Plan, make_plan
from fdg.runtime import load_source
from fdg.runtime.grouped import coupling_entries, coupling_matrix, sparse_matmul

SOURCES = {
    "conv": (CONV_SOURCE, {"mul": 3, "lmax": 2}),
    "conv lmax 3": (CONV_SOURCE, {"mul": 2, "lmax": 3}),
    "learned": (
        "diagram L() { input a : 2x0e + 3x1o + 2x2e\n input v : 1o\n"
        " output y = couple(a, sh(v, 2)) -> 2x0e + 3x1o + 3x1e + 2x2e [mode = uvu] }",
        {},
    ),
    "uvw": (
        "diagram U() { input a : 3x0e + 2x1o + 2x2e\n input v : 1o\n"
        " output y = couple(a, sh(v, 2)) -> 2x0e + 4x1o + 3x1e + 2x2o + 3x2e [mode = uvw] }",
        {},
    ),
    "uvw node layer": (NODE_SOURCE, {"mul": 3, "lmax": 2}),
    "per species": (
        "diagram S() { input a : 16x1o + 16x2e\n input b : 0e + 1o + 2e\n input z : index batch -> 3\n"
        " output y = couple(a, b) -> 16x1o + 16x2e + 16x1e [mode = uvu, weights = learned[z]] }",
        {},
    ),
}


def _variants(plan: Plan) -> dict[str, Plan]:
    """The plan with every grouped coupling pinned to each lowering in turn (uvw, which has no native kernel, stays
    grouped where ``fused`` is asked for)."""
    assert plan.grouped, "the cost model should group these couplings"
    variants = {}
    for lowering in ("dense", "grouped", "grouped+sparse", "fused"):
        pins = {}
        for node, choice in plan.choices.items():
            pins[plan.names[node]] = Pin(lowering if lowering in choice.seconds else "grouped")
        variants[lowering] = make_plan(plan.diagram, pins)
        assert all(variants[lowering].lowered[n].lowering == pins[plan.names[n]].lowering for n in plan.choices)
    return variants


@pytest.mark.parametrize("case", sorted(SOURCES))
def test_lowerings_agree_with_derivatives(case: str) -> None:
    source, params = SOURCES[case]
    plan = fdg.build(source, **params).plan
    modules = {}
    for name, variant in _variants(plan).items():
        torch.manual_seed(0)
        modules[name] = load_source(emit_module(variant, "test"), plan.diagram.name)().double()
    state = modules["dense"].state_dict()
    for m in modules.values():
        m.load_state_dict({k: v for k, v in state.items() if k in m.state_dict()}, strict=False)
    inputs = list(random_inputs(modules["dense"], torch.float64, generator=1).values())
    expected = _derivatives(modules["dense"], inputs)
    for name, m in modules.items():
        for got, want in zip(_derivatives(m, inputs), expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10, msg=name)


def _derivatives(module: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The output, its gradients (with graph) and second derivatives along fixed random directions."""
    floats = [t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs]
    leaves = [t for t in floats if t.requires_grad] + [p for p in module.parameters()]
    out = module(*floats)
    g = torch.Generator().manual_seed(2)
    direction = torch.randn(out.shape, generator=g, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, direction, create_graph=True)
    second = torch.autograd.grad(sum((x * x).sum() for x in grads), leaves)
    return [out, *grads, *second]


def test_sparse_matmul_equals_the_dense_product() -> None:
    plan = fdg.build(CONV_SOURCE, lmax=3).plan
    (g,) = plan.grouped.values()
    K = coupling_matrix(g.rows, g.recipe, dtype=torch.float64)
    index, values = coupling_entries(g.rows, g.recipe, dtype=torch.float64)
    assert index.shape[1] == g.nonzeros == int((K != 0).sum()) < K.numel() / 5
    b = torch.randn(11, g.rows, dtype=torch.float64)
    torch.testing.assert_close(sparse_matmul(b, index, values, K.shape[1]), b @ K, atol=1e-12, rtol=0)


# SEGNN's coupling of |r|^2 with the edge attributes: dense is estimated faster on many rows, grouped on few
PER_CALL = """
diagram P() { input d : 0e over edge
 input v : 1o over edge
 output y = couple(d, sh(v, 2)) -> 6x0e + 2x1o + 2x2e [mode = uvw] }
"""


@pytest.mark.parametrize("where", ["few", "just below", "at", "above"])
def test_lowering_picked_per_call_by_rows(where: str) -> None:
    plan = fdg.build(PER_CALL).plan
    (choice,) = plan.choices.values()
    assert (choice.lowering, choice.below, choice.per_call) == ("dense", "grouped", True)
    assert choice.crossover is not None
    rows = {"few": 5, "just below": choice.crossover - 1, "at": choice.crossover, "above": choice.crossover + 9}[where]
    source = emit_module(plan, "test")
    assert f"if d.shape[0] < {choice.crossover}:" in source
    module = load_source(source, "P")().double()
    torch.manual_seed(0)
    dense = load_source(emit_module(_variants(plan)["dense"], "test"), "P")().double()
    dense.load_state_dict({k: v for k, v in module.state_dict().items() if k in dense.state_dict()})
    inputs = list(random_inputs(module, torch.float64, sizes={"edge": rows}, generator=1).values())
    for got, want in zip(_derivatives(module, inputs), _derivatives(dense, inputs), strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
