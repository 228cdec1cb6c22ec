"""``fdg.planning.plan.make_plan`` and pins: Python names, parameter shapes, pinned lowerings and their errors.

A pin changes speed, never results: every candidate lowering of a coupling, pinned, computes the unpinned module's
outputs in float64 to 1e-10 with the same weights.
"""

from __future__ import annotations

import keyword
import warnings

import pytest
import torch
from module_inputs import random_inputs

import fdg
from fdg import api, ir
from fdg.codegen.vertex import EMITTERS
from fdg.errors import FdgArgumentError
from fdg.planning.lowerings import LOWERINGS
from fdg.planning.pin import Pin
from fdg.planning.plan import Plan, make_plan
from fdg.runtime import FdgModule

COUPLE = """diagram D() {
    input a : 2x0e + 2x1o
    input v : 1o
    Y = sh(v, 1)
    m = couple(a, Y) -> 2x0e + 2x1o [mode = uvu]
    output y = linear(m) -> 2x0e
}"""


def plan_of(source: str, pins: dict[str, Pin] | None = None) -> Plan:
    return make_plan(api.lower_source(source), pins)


def named(plan: Plan) -> dict[str, str]:
    """IR node -> Python name, for the values (not outputs)."""
    return {n: plan.names[n] for n in plan.order if n in plan.names}


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("statement", "value", "python"),
    [
        ("lambda = 2 * x", "lambda", "t_lambda"),
        ("class = 2 * x", "class", "t_class"),
        ("torch = 2 * x", "torch", "torch_2"),
        ("self = 2 * x", "self", "self_2"),
        ("fdg = 2 * x", "fdg", "fdg_2"),
        ("__ = 2 * x", "__", "t"),
    ],
)
def test_value_names_avoid_keywords_and_generated_names(statement: str, value: str, python: str) -> None:
    """The plan's name for a value is a valid identifier that is no keyword and shadows nothing forward uses; the
    compiled module still computes it."""
    source = f"diagram D() {{ input x : 0e + 1o\n {statement}\n output y = {value} + x }}"
    plan = plan_of(source)
    assert plan.names[value] == python
    module = fdg.compile(source).double()
    x = torch.randn(4, 4, dtype=torch.float64)
    torch.testing.assert_close(module(x), 2 * x + x, rtol=0, atol=0)


def test_anonymous_values_never_take_an_input_name() -> None:
    """``_y_1`` (the first unnamed vertex of statement ``y``) would become ``y_1``, which the input holds: it gets
    ``y_1_2``; inputs keep their own names."""
    plan = plan_of("diagram D() { input y_1 : 0e\n output y = 2 * y_1 + y_1 }")
    assert named(plan) == {"y_1": "y_1", "_y_1": "y_1_2", "y": "y"}


def test_weight_names_do_not_depend_on_other_statements() -> None:
    """Unnamed vertices are numbered within their statement: adding or removing a statement elsewhere renames no
    weight (``state_dict`` keys stay loadable)."""
    body = "output y = (linear(x) -> 4x0e) + (linear(x) -> 4x0e)"
    before = fdg.compile(f"diagram D() {{ input x : 4x0e\n {body} }}")
    after = fdg.compile(f"diagram D() {{ input x : 4x0e\n output z = (linear(x) -> 4x0e) + x\n {body} }}")
    assert set(before.state_dict()) == {"y_1_weight", "y_2_weight"}
    assert set(before.state_dict()) < set(after.state_dict())
    after.load_state_dict(before.state_dict(), strict=False)
    x = torch.randn(3, 4)
    torch.testing.assert_close(after(x)[1], before(x))


def test_every_name_is_unique_and_an_identifier() -> None:
    plan = plan_of(COUPLE)
    used = [*named(plan).values(), *(p.name for p in plan.parameters.values()), *plan.cg]
    assert len(used) == len(set(used))
    assert all(name.isidentifier() and not keyword.iskeyword(name) for name in used)
    assert not set(used) & ir.GENERATED


def test_parameter_name_never_clashes_with_an_input() -> None:
    """An input already named ``y_weight``: the weight of ``y`` takes ``y_weight_2`` (an input stays as declared)."""
    plan = plan_of("diagram D() { input x : 0e + 1o\n input y_weight : 0e\n y = linear(x) -> 0e + 1o\n"
                   " output o = y + y\n output p = y_weight }")  # fmt: skip
    assert plan.parameters["y"].name == "y_weight_2"
    assert plan.names["y_weight"] == "y_weight"


def test_temporary_names_never_clash_with_values() -> None:
    """Forward of a ``learned[z]`` linear ``y`` makes a temporary ``y_w``; a value named ``y_w`` must survive it.

    ``y[n] = W[z[n]] . x[n] / sqrt(2)`` (e3nn's linear normalization for a fan-in of 2), and ``y_w = 2 x``."""
    source = """diagram D() {
        input x : 2x0e
        input z : index batch -> 3
        y = linear(x) -> 0e [weights = learned[z]]
        y_w = 2 * x
        output o = y
        output p = y_w
    }"""
    module = fdg.compile(source).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    z = torch.tensor([0, 2, 1, 2, 0])
    o, p = module(x, z)
    W = module.y_weight
    assert W.shape == (3, 2)
    torch.testing.assert_close(o[:, 0], (W[z] * x).sum(1) / 2**0.5, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(p, 2 * x, rtol=0, atol=0)


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("statement", "shape"),
    [
        ("m = linear(a) -> 3x0e + 2x1o", (10,)),  # 0e: 2x3, 1o: 2x2
        ("m = linear(a) -> 3x0e + 2x1o [weights = learned[z]]", (4, 10)),  # one row per species
        ("m = couple(a, b) -> 2x0e + 2x1o [mode = uvu]", (8,)),  # paths 0e0e, 0e1o, 1o0e, 1o1o; u = 2 each
        ("m = couple(a, b) -> 2x0e + 2x1o [mode = uvu, weights = learned[z]]", (4, 8)),
        ("m = couple(a, b) -> 3x0e + 1x1o [mode = uvw]", (16,)),  # u x v x w: 2x1x3 + 2x1x1 + 2x1x1 + 2x1x3
    ],
)
def test_parameter_shapes(statement: str, shape: tuple[int, ...]) -> None:
    """``learned``: one flat vector of the vertex's numel; ``learned[z]``: ``[count, numel]``; the module holds it."""
    source = f"""diagram D() {{
        input a : 2x0e + 2x1o
        input b : 0e + 1o
        input z : index batch -> 4
        {statement}
        output y = m
    }}"""
    plan = plan_of(source)
    assert {n: (p.name, p.shape) for n, p in plan.parameters.items()} == {"m": ("m_weight", shape)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fdg.FdgWarning)  # z is unused where the weights are shared
        module = fdg.compile(source)
    assert {k: tuple(v.shape) for k, v in module.named_parameters()} == {"m_weight": shape}


def test_external_and_no_weights_make_no_parameter() -> None:
    plan = plan_of("diagram D() { input a : 2x0e over edge\n input b : 0e over edge\n input R : weights over edge\n"
                   " m = couple(a, b) -> 2x0e [mode = uvu, weights = R]\n"
                   " n = couple(a, b) -> 2x0e [mode = uvu, weights = none]\n output y = m + n }")  # fmt: skip
    assert plan.parameters == {}


# ------------------------------------------------------------------ pins


def test_pin_picks_the_lowering_and_marks_the_choice() -> None:
    free = plan_of(COUPLE)
    assert free.lowered["m"].lowering != "grouped" and not free.choices["m"].pinned
    plan = plan_of(COUPLE, {"m": Pin("grouped")})
    assert plan.lowered["m"].lowering == "grouped"
    choice = plan.choices["m"]
    assert (choice.lowering, choice.pinned, choice.per_call, choice.crossover) == ("grouped", True, False, None)
    assert choice.seconds == free.choices["m"].seconds  # the estimates are still reported
    assert plan.grouped["m"].method == "m_slice"


def test_pin_dense_holds_no_grouped_blocks() -> None:
    plan = plan_of(COUPLE, {"m": Pin("dense")})
    assert (plan.lowered["m"].lowering, plan.grouped) == ("dense", {})
    assert plan.cg == {"cg_0_0_0": (0, 0, 0), "cg_0_1_1": (0, 1, 1), "cg_1_0_1": (1, 0, 1), "cg_1_1_0": (1, 1, 0)}


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ({"nope": Pin("dense")}, "cannot pin nope: diagram D has no such value"),
        ({"m": Pin("magic")}, "cannot pin m to 'magic': its lowerings are dense, fused, grouped, grouped+sparse"),
        ({"m": Pin("folded")}, "cannot pin m to 'folded'"),
        ({"y": Pin("grouped")}, "cannot pin y to 'grouped': its lowerings are dense"),  # a linear
        ({"Y": Pin("dense")}, "cannot pin the lowering of Y: only couple, linear and fuse have a choice"),  # an sh
    ],
)
def test_bad_pins_are_argument_errors(pins: dict[str, Pin], message: str) -> None:
    with pytest.raises(FdgArgumentError) as err:
        plan_of(COUPLE, pins)
    assert err.value.message.startswith(message)


# a pin names a value as the diagram does, also where the module renames it (`lambda` is `t_lambda`)
def test_pin_by_the_diagram_name_of_a_renamed_value() -> None:
    plan = plan_of(COUPLE.replace("m =", "lambda =").replace("(m)", "(lambda)"), {"lambda": Pin("grouped")})
    assert plan.lowered["lambda"].lowering == "grouped"


# a pin on an input is an error, as one on an sh is
def test_pinning_an_input_is_an_error() -> None:
    with pytest.raises(FdgArgumentError, match="cannot pin"):
        plan_of(COUPLE, {"a": Pin("dense")})


def test_pin_short_forms() -> None:
    assert Pin.of("folded:sparse") == Pin("folded", "sparse")
    assert Pin.of(" tree ((a, b), c) : split ") == Pin("tree ((a, b), c)", "split")
    assert Pin.of("grouped") == Pin("grouped") == Pin("grouped", None)
    pin = Pin("fused")
    assert Pin.of(pin) is pin
    assert [str(Pin.of(text)) for text in ("grouped+sparse", "folded:dense")] == ["grouped+sparse", "folded:dense"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("folded:fast", "unknown form 'fast' of a fuse's products; the forms are dense, split, sparse"),
        ("folded:", "unknown form ''"),
        (3, "a pin is a lowering's name, got 3"),
    ],
)
def test_bad_pin_forms(value: object, message: str) -> None:
    with pytest.raises(FdgArgumentError) as err:
        Pin.of(value)
    assert err.value.message.startswith(message)


def test_every_lowering_has_an_emitter() -> None:
    assert sorted(LOWERINGS) == sorted(EMITTERS)
    assert sorted(name for name, entry in LOWERINGS.items() if entry.choosable) == [
        "dense",
        "fused",
        "grouped",
        "grouped+sparse",
    ]


# every kind of coupling with alternatives: shared, per-row and per-species weights in mode uvu, shared in uvw
PINNABLE = {
    "uvu learned": "input a : 2x0e + 2x1o + 1x2e\n input v : 1o\n"
    " m = couple(a, sh(v, 2)) -> 2x0e + 2x1o + 1x1e + 1x2e [mode = uvu]",
    "uvu external": "input a : 2x0e + 2x1o over edge\n input v : 1o over edge\n input R : weights over edge\n"
    " m = couple(a, sh(v, 2)) -> 2x0e + 2x1o + 2x2e [mode = uvu, weights = R]",
    "uvu per species": "input a : 2x0e + 2x1o\n input b : 0e + 1o\n input z : index batch -> 3\n"
    " m = couple(a, b) -> 2x0e + 2x1o + 2x1e [mode = uvu, weights = learned[z]]",
    "uvw learned": "input a : 2x0e + 2x1o\n input v : 1o\n m = couple(a, sh(v, 1)) -> 3x0e + 1x1o + 2x1e [mode = uvw]",
}


def _run(module: FdgModule, reference: FdgModule) -> torch.Tensor:
    module.double().load_state_dict(dict(reference.named_parameters()), strict=False)
    return module(**random_inputs(reference, generator=7))


@pytest.mark.parametrize("case", sorted(PINNABLE))
def test_every_pinned_lowering_computes_the_same_numbers(case: str) -> None:
    source = f"diagram D() {{ {PINNABLE[case]}\n output y = m }}"
    candidates = sorted(plan_of(source).choices["m"].seconds)
    assert {"dense", "grouped", "grouped+sparse"} <= set(candidates)
    free = fdg.compile(source).double()
    expected = _run(free, free)
    assert expected.abs().max() > 1e-3
    for lowering in candidates:
        assert fdg.build(source, pin={"m": lowering}).plan.lowered["m"].lowering == lowering
        pinned = fdg.compile(source, pin={"m": lowering})
        torch.testing.assert_close(_run(pinned, free), expected, rtol=1e-10, atol=1e-10, msg=lowering)


def test_pin_accepts_a_pin_or_its_short_form() -> None:
    assert fdg.emit(COUPLE, pin={"m": "grouped+sparse"}) == fdg.emit(COUPLE, pin={"m": Pin("grouped+sparse")})
    assert fdg.emit(COUPLE, pin={"m": "dense"}) != fdg.emit(COUPLE, pin={"m": "grouped"})
