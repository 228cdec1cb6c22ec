"""``fdg.checker.evaluate``: compile-time numbers and irreps, and their errors as ``FdgError`` at ``LINE:COL``.

Expressions are parsed as the default of a parameter (``diagram D(q = EXPR)``, column 15 onwards) or as the type of
an input, then evaluated directly; a few go through the whole checker to show the same values and locations there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from fdg import api, ir
from fdg.checker import evaluate
from fdg.errors import FdgError, FdgTypeError
from fdg.frontend import syntax
from fdg.frontend.parser import parse
from fdg.runtime import Irreps

ENV = {"m": 4, "mul": 3, "eps": 0.5}


def expr(text: str) -> syntax.Expr:
    return parse(f"diagram D(q = {text}) {{ input x : 0e\n output y = x }}").diagrams[0].params[0].default


def irreps_expr(text: str) -> syntax.IrrepsSum:
    stmt = parse(f"diagram D() {{ input x : {text}\n output y = x }}").diagrams[0].body[0]
    assert isinstance(stmt, syntax.Input) and isinstance(stmt.type, syntax.IrrepsType)
    assert isinstance(stmt.type.irreps, syntax.IrrepsSum)
    return stmt.type.irreps


def failure(thunk: Callable[..., object], *args: object) -> FdgError:
    with pytest.raises(FdgTypeError) as err:
        thunk(*args)
    return err.value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2 * m + 1", 9),
        ("m - 3 * 2", -2),  # precedence
        ("(m - 3) * 2", 2),
        ("7 // 2", 3),
        ("7 / 2", 3.5),
        ("-m", -4),
        ("-(mul // 2 - 1.5)", 0.5),
        ("eps * m", 2.0),
        ("1 + 2.5", 3.5),
        ("mul / 3", 1.0),  # true division is a float even when exact
        ("2 ** m", 16),  # integers to a non-negative integer power stay integers
        ("-2 ** 2", -4),  # as in Python: the power binds tighter than the sign
        ("2 ** 3 ** 2", 512),  # right-associative
        ("2 ** -1", 0.5),
        ("eps ** 2", 0.25),
        ("(-8) ** 2.0", 64.0),  # an integral float exponent of a negative base is real
        ("sqrt(m)", 2.0),
        ("sqrt(5 / 6) * 6", 6 * (5 / 6) ** 0.5),
        ("max(mul, m // 2)", 3),
        ("min(eps, 1)", 0.5),
        ("log(exp(2.0))", 2.0),
        ("cos(0)", 1.0),
    ],
)
def test_numbers(text: str, value: int | float) -> None:
    got = evaluate.number(expr(text), ENV)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "message", "column", "hint"),
    [
        ("mu", "unknown parameter 'mu'", 15, "did you mean 'mul'?"),
        ("2 * zzz", "unknown parameter 'zzz'", 19, "a number must be computed from numbers and parameters"),
        ("m / (mul - 3)", "division by zero", 15, None),
        ("1 + m // 0", "division by zero", 19, None),
        ("1.0e300 * 1.0e300 * m", "this expression overflows", 15, None),
        ("2147483648 * 2147483648 * m", "this expression overflows", 15, None),  # 2^64 is beyond 2^62
        ("1 + 2 ** 10 ** 9", "this expression overflows", 19, None),  # refused before it is computed
        ("10.0 ** 400", "this expression overflows", 15, None),
        ("0 ** -m", "division by zero", 15, "0 to a negative power"),
        ("(-m) ** 0.5", "(-4) ** 0.5 is not a real number", 15, "a negative number to a fractional power"),
        ("sqrt(1 - m)", "sqrt(-3) is not a real number", 15, "sqrt takes x >= 0"),
        ("log(0)", "log(0) is not a real number", 15, "log takes x > 0"),
        ("exp(1000)", "this expression overflows", 15, None),
        ("max(m)", "max takes two or more numbers, got 1 argument(s)", 15, None),
        ("sqrt(m, 2)", "sqrt takes one number, got 2 argument(s)", 15, None),
        ("2 * sqrt(x = m)", "sqrt takes its arguments by position", 24, None),
    ],
)
def test_number_errors(text: str, message: str, column: int, hint: str | None) -> None:
    error = failure(evaluate.number, expr(text), ENV)
    assert (error.message, error.hint) == (message, hint)
    assert error.span is not None and (error.span.line, error.span.column) == (1, column)


def test_what_names_the_expected_value() -> None:
    error = failure(evaluate.number, expr("k"), {}, "the degree")
    assert error.hint == "the degree must be computed from numbers and parameters"


def test_functions_and_powers_in_a_whole_diagram() -> None:
    """In a parameter's default, an assignment and a scale, through the checker and the compiled module."""
    source = "diagram D(mul = 2 ** 2, c = sqrt(5 / 6)) { input x : mul x 0e\n k = max(2, mul) * c\n output y = x * k }"
    module = api.compile(source)
    torch.testing.assert_close(module(torch.ones(1, 4)), torch.full((1, 4), 4 * math.sqrt(5 / 6)))
    torch.testing.assert_close(api.compile(source, mul=2)(torch.ones(1, 2)), torch.full((1, 2), 2 * math.sqrt(5 / 6)))


def test_a_call_is_not_a_number() -> None:
    error = failure(evaluate.number, expr("f(2)"), ENV)
    assert error.message == "expected a number, a constant expression of numbers and parameters"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("7 / 2", "a multiplicity must be an integer, got 3.5", "use // for integer division"),
        ("2.0", "a multiplicity must be an integer, got 2.0", None),
        ("m - 4", "a multiplicity must be at least 1, got 0", None),
        ("m * 1000", "a multiplicity must be at most 100, got 4000", None),
    ],
)
def test_integer_errors(text: str, message: str, hint: str | None) -> None:
    error = failure(evaluate.integer, expr(text), ENV, "a multiplicity", 1, 100)
    assert (error.message, error.hint) == (message, hint)


def test_integer_in_range() -> None:
    assert evaluate.integer(expr("m // 2 + 1"), ENV, "a multiplicity", 1, 3) == 3


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("mul x (0e + 1o) + 2x2e", "3x0e+3x1o+2x2e"),
        ("2 x (m x (1e + 0o))", "8x1e+8x0o"),  # nested multiplicities multiply
        ("sh(2)", "1x0e+1x1o+1x2e"),
        ("m x sh(m // 2 - 1)", "4x0e+4x1o"),
        ("1y + 2y + 3x3y", "1x1o+1x2e+3x3o"),  # y: the parity of spherical harmonics, (-1)^l
        ("(2 * mul) x 0e", "6x0e"),
    ],
)
def test_irreps(text: str, value: str) -> None:
    assert evaluate.irreps(irreps_expr(text), ENV) == Irreps(value)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        # the irreps start at column 25
        ("300x(300x0e)", "multiplicity 90000 is too large (at most 65536)", 25),
        ("70000x0e", "a multiplicity must be at most 65536, got 70000", 25),
        ("sh(mul / 2)", "the degree of sh must be an integer, got 1.5", 28),
        ("sh(21)", "the degree of sh must be at most 20, got 21", 28),
        ("nope x 0e", "unknown parameter 'nope'", 25),
    ],
)
def test_irreps_errors(text: str, message: str, column: int) -> None:
    error = failure(evaluate.irreps, irreps_expr(text), ENV)
    assert error.message == message
    assert error.span is not None and (error.span.line, error.span.column) == (1, column)


def test_degree_limit_of_a_literal() -> None:
    """An irrep literal above degree 20 never reaches evaluation alone: it is refused where it is written."""
    with pytest.raises(FdgError) as err:
        evaluate.irreps(irreps_expr("2x21e"), ENV)
    assert "21" in err.value.message
    assert err.value.span is not None and (err.value.span.line, err.value.span.column) == (1, 27)


def test_suggest() -> None:
    assert evaluate.suggest("mull", ["mul", "lmax"]) == "did you mean 'mul'?"
    assert evaluate.suggest("zzz", ["mul", "lmax"]) is None


# ------------------------------------------------------------------ through the checker


def test_parameter_expressions_in_a_diagram() -> None:
    """Defaults may use earlier parameters, and overrides flow into them."""
    source = "diagram D(mul = 2, k = mul * 3) { input x : k x 0e\n output y = (mul / 4) * x }"
    d = api.lower_source(source)
    assert d.params == (("mul", 2), ("k", 6))
    assert d.out("x") == ir.Feature(ir.Axis("batch"), Irreps("6x0e"))
    assert d.op("y").factor == 0.5
    assert api.lower_source(source, mul=4).params == (("mul", 4), ("k", 12))


def test_errors_are_located_in_the_file() -> None:
    """Reported as FILE:LINE:COL, the source line and a caret under the subexpression."""
    source = "diagram D(mul = 2) {\n    input x : mul x 0e\n    output y = (1 / (mul - 2)) * x\n}"
    with pytest.raises(FdgTypeError) as err:
        api.lower_source(source)
    assert str(err.value) == (
        "<string>:3:17: error: division by zero\n"
        "    3 |     output y = (1 / (mul - 2)) * x\n"
        "      |                 ^^^^^^^^^^^^^\n"
    ).rstrip("\n")


def test_a_float_override_where_an_integer_is_needed() -> None:
    with pytest.raises(FdgTypeError) as err:
        api.lower_source("diagram D(mul = 2) { input x : mul x 0e\n output y = x }", mul=2.5)
    assert str(err.value).splitlines()[0] == "<string>:1:32: error: a multiplicity must be an integer, got 2.5"


# SPEC section 2: `sqrt`, `**` and irreps-valued parameters in expressions (the last not yet)
def test_power_operator() -> None:
    assert api.lower_source("diagram D() { input x : (2 ** 3) x 0e\n output y = x }").out("x").irreps == Irreps("8x0e")
    assert api.lower_source("diagram D() { input x : 2 ** 3 x 0e\n output y = x }").out("x").irreps == Irreps("8x0e")


def test_sqrt() -> None:
    d = api.lower_source("diagram D() { input x : 0e\n output y = sqrt(4) * x }")
    assert d.op("y").factor == 2.0


def test_irreps_valued_parameter() -> None:
    d = api.lower_source("diagram D(hidden = 2x0e + 2x1o) { input x : hidden\n output y = x }")
    assert d.out("x").irreps == Irreps("2x0e+2x1o")
    assert d.params == (("hidden", Irreps("2x0e+2x1o")),)


IRREPS_DIAGRAM = """
diagram D(mul = 2, hidden = 0e + 1o) {
    input  x : mul x hidden + 3x2e over node
    output y = linear(x) -> hidden + 2x2e
}
"""


@pytest.mark.parametrize(
    "given",
    [Irreps("0e+2e"), "0e + 2e", [(1, (0, 1)), (1, (2, 1))]],
    ids=["fdg", "string", "pairs"],
)
def test_an_irreps_parameter_is_given_as_irreps_a_string_or_pairs(given: object) -> None:
    d = api.lower_source(IRREPS_DIAGRAM, hidden=given)
    assert d.out("x").irreps == Irreps("2x0e+2x2e+3x2e")  # `mul x hidden` distributes, as `mul x (0e + 2e)`
    assert d.out(d.operands(d.outputs()[0])[0]).irreps == Irreps("0e+2e+2x2e")
    assert ir.format_params(d.params) == "mul=2, hidden='1x0e+1x2e'"


def test_an_e3nn_irreps_is_a_parameter_value() -> None:
    e3nn_o3 = pytest.importorskip("e3nn.o3")
    d = api.lower_source(IRREPS_DIAGRAM, hidden=e3nn_o3.Irreps("2x0e+1x1o"))
    assert d.out("x").irreps == Irreps("4x0e+2x1o+3x2e")


def test_a_compiled_module_names_its_irreps_parameters_in_python() -> None:
    source = api.emit(IRREPS_DIAGRAM, hidden="0e+1o")
    assert "diagram D(mul=2, hidden='1x0e+1x1o')" in source
    module = api.compile(IRREPS_DIAGRAM, hidden="0e+1o")
    assert module.inputs["x"] == "2x0e+2x1o+3x2e over node"


def test_irreps_parameters_pass_through_diagram_calls() -> None:
    program = """
    diagram Inner(hidden = 0e) { input a : hidden\n output b = linear(a) -> hidden }
    diagram Outer(hidden = 2x0e + 2x1o) {
        input x : hidden
        output y = Inner(hidden = hidden)(x)
        output z = Inner(hidden = 2x1o)(linear(x) -> 2x1o)
    }
    """
    d = api.lower_source(program, "Outer", hidden="1x0e+1x1o")
    assert [str(d.out(d.operands(n)[0]).irreps) for n in d.outputs()] == ["1x0e+1x1o", "2x1o"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden": 3}, "parameter 'hidden' of D holds irreps (default 1x0e+1x1o), got a number: 3"),
        ({"mul": "2x0e"}, "parameter 'mul' of D holds a number (default 2), got irreps: 2x0e"),
        ({"hidden": "2x0q"}, "parameter 'hidden' must be a number or irreps, got '2x0q'"),
        ({"hidden": object()}, "parameter 'hidden' must be a number or irreps, got <object"),
    ],
    ids=["number_for_irreps", "irreps_for_number", "bad_string", "other"],
)
def test_a_parameter_keeps_its_kind(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(FdgError) as err:
        api.lower_source(IRREPS_DIAGRAM, **overrides)
    assert str(err.value).startswith(f"error: {message}")
