"""``fdg.checker.order``: statements evaluated by dependency (ties in source order), references, cycle errors."""

from __future__ import annotations

import time

import pytest

import fdg
from fdg import api
from fdg.checker import order
from fdg.errors import FdgTypeError
from fdg.frontend import syntax
from fdg.frontend.parser import parse


def diagram(body: str) -> syntax.Diagram:
    return parse(f"diagram D(mul = 2) {{\n{body}\n}}").diagrams[0]


def names(body: str) -> list[str]:
    return [s.name.id for s in order.ordered(diagram(body))]


def test_dependencies_first_ties_in_source_order() -> None:
    """``a`` is needed by ``c`` and ``b``; those two are independent, so they keep their source order (c, b)."""
    body = """    input x : 0e + 1o
    output y = b + c
    c = 2 * a
    b = 3 * a
    a = x * 0.5"""
    assert names(body) == ["a", "c", "b", "y"]


def test_independent_statements_keep_source_order() -> None:
    body = "    input x : 0e\n    z = 2 * x\n    output w = 3 * x\n    a = 4 * x\n    output z\n    output a"
    assert names(body) == ["z", "w", "a"]  # inputs and bare `output a` are not evaluated


def test_numbers_assigned_later_are_evaluated_first() -> None:
    """A number used in an output type (``k``) counts as a dependency too."""
    body = "    input x : mul x 0e\n    output y = linear(x) -> k x 0e\n    k = 2 * mul"
    assert names(body) == ["k", "y"]
    d = api.lower_source(f"diagram D(mul = 2) {{\n{body}\n}}")
    assert str(d.out("y")) == "4x0e over batch"


@pytest.mark.parametrize(
    ("body", "message", "line", "column"),
    [
        # a uses b, b uses c, c uses a: the reference closing the cycle is `b` in `a = b * 2`
        (
            "    input x : 0e\n    a = b * 2\n    b = c + x\n    c = a * 3\n    output y = a",
            "cycle: a -> c -> b -> a",
            3,
            9,
        ),
        ("    input x : 0e\n    a = a * 2\n    output y = a", "cycle: a -> a", 3, 9),
        ("    input x : 0e\n    output y = z * 2\n    z = y + x", "cycle: y -> z -> y", 3, 16),
    ],
)
def test_cycles_are_errors_at_the_closing_reference(body: str, message: str, line: int, column: int) -> None:
    with pytest.raises(FdgTypeError) as err:
        order.ordered(diagram(body))
    assert err.value.message == message
    assert err.value.hint == "a diagram is acyclic: every wire must be computed from inputs without depending on itself"
    assert err.value.span is not None and (err.value.span.line, err.value.span.column) == (line, column)


def test_cycle_error_through_the_api() -> None:
    source = "diagram D() {\n    input x : 0e\n    a = b * 2\n    b = a + x\n    output y = a\n}"
    with pytest.raises(FdgTypeError) as err:
        api.lower_source(source)
    assert str(err.value).splitlines()[:3] == [
        "<string>:3:9: error: cycle: a -> b -> a",
        "    3 |     a = b * 2",
        "      |         ^",
    ]


def value(text: str) -> syntax.Expr:
    stmt = diagram(f"    output y = {text}").body[0]
    assert isinstance(stmt, syntax.Output) and stmt.value is not None
    return stmt.value


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("a + 2 * -b", ["a", "b"]),
        ("h[src]", ["h", "src"]),
        ("sum(m, by = dst)", ["m", "dst"]),
        ("couple(x[i], Y) -> mul x 0e + sh(L) [weights = W]", ["x", "i", "Y", "W", "mul", "L"]),
        ("fuse(a, b, c) -> lmax k [tree = ((a, b), c)]", ["a", "b", "c", "k"]),  # the tree names inputs, not values
        ("Other(mul = m)(a, b)", ["m", "a", "b"]),  # a diagram call: its parameters, then its inputs
        ("linear(t) -> (2 * n) x (0e + p x 1o)", ["t", "n", "p"]),
    ],
)
def test_references(text: str, refs: list[str]) -> None:
    """Every value an expression reads, in order; function names are not references."""
    assert [n.id for n in order.references(value(text))] == refs


# product bug: option words (`mode = uvu`) are taken as references, so a value named like a mode makes a false cycle
def test_a_value_named_like_a_mode_is_no_dependency() -> None:
    source = """diagram D() {
        input a : 2x0e
        input b : 0e
        m = couple(a, b) -> 2x0e [mode = uvu]
        uvu = m * 2
        output y = uvu
    }"""
    assert str(api.lower_source(source).out("uvu")) == "2x0e over batch"


def test_ordering_is_not_quadratic() -> None:
    # 1500 statements each written before the one it uses: one sort, not a cycle search per statement (was 21 s)
    n = 1500
    body = [f"    v{i} = 2 * {'x' if i == 1 else f'v{i - 1}'}" for i in range(n, 0, -1)]
    text = "\n".join(["diagram Chain() {", "    input x : 4x0e", *body, f"    output y = v{n}", "}"])
    start = time.perf_counter()
    assert fdg.check(text) == []
    assert time.perf_counter() - start < 15  # generous: about 1 s here
