"""Modules of a diagram with one ``fuse`` vertex, each evaluating it another way (shared by the fuse tests).

The plan picks one evaluation by the cost model; here every candidate (each tree, the folded tensor) is pinned in each
form (dense, split, sparse) by a :class:`~fdg.planning.pin.Pin`, as ``test_lowering.py`` pins the lowerings of
couplings. All variants get the weights of the first, so they must compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

import fdg
from fdg.codegen import emit_module
from fdg.planning.pin import Pin
from fdg.planning.plan import Plan, make_plan
from fdg.runtime import FdgModule, load_source


def fuse_node(plan: Plan) -> str:
    (node,) = plan.fusions
    return node


def pinned(plan: Plan, candidate: str, form: str | None = None) -> Plan:
    """``plan`` with its fuse evaluated as ``candidate`` says, every product in ``form`` (None: the cheapest)."""
    return make_plan(plan.diagram, {plan.names[fuse_node(plan)]: Pin(candidate, form)})


def variants(source: str, forms: Iterable[str] = ("dense", "split", "sparse"), **params: int) -> dict[str, FdgModule]:
    """``{"chosen": the compiled module, "<candidate> <form>": ...}`` in float64, all with the same weights."""
    plan = fdg.build(source, **params).plan
    candidates = list(plan.fusions[fuse_node(plan)].choice.seconds)
    torch.manual_seed(0)
    chosen = load_source(emit_module(plan, "test"), plan.diagram.name)().double()
    modules = {"chosen": chosen}
    for candidate in candidates:
        for form in forms:
            variant = pinned(plan, candidate, form)
            module = load_source(emit_module(variant, "test"), plan.diagram.name)().double()
            module.load_state_dict(dict(chosen.named_parameters()), strict=False)
            modules[f"{candidate} {form}"] = module
    return modules
