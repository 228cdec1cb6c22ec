"""Tests of fdg.frontend.parser: tree shapes, spans, the irreps syntax, and syntax errors (golden files)."""

from __future__ import annotations

import doctest
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from golden_util import check_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark
from sources import EXAMPLES, FUSION, MACE, NEQUIP

import fdg.frontend.parser
from fdg.errors import FdgSyntaxError
from fdg.frontend import syntax as s
from fdg.frontend.parser import parse

ERRORS = Path(__file__).parents[1] / "errors" / "syntax"
CORPUS = Path(__file__).parents[2] / "diagrams"


def show(node: object) -> str:
    """A compact canonical text for a syntax node: binary operations fully parenthesized, `{}` around `->` calls."""
    match node:
        case s.Number(value=v) | s.Name(id=v):
            return str(v)
        case s.BinOp(op=op, left=a, right=b):
            return f"({show(a)} {op} {show(b)})"
        case s.Neg(operand=a):
            return f"(-{show(a)})"
        case s.Tuple(items=items):
            return "(" + ", ".join(map(show, items)) + ")"
        case s.Index(value=a, index=i):
            return f"{show(a)}[{show(i)}]"
        case s.Arg(name=None, value=v):
            return show(v)
        case s.Arg(name=k, value=v) | s.Option(name=k, value=v):
            return f"{k}={show(v)}"
        case s.Call(func=f, args=args, arrow=None):
            return f"{show(f)}(" + ", ".join(map(show, args)) + ")"
        case s.Call(func=f, args=args, arrow=arrow):
            return "{" + show(s.Call(f, args, None, node.span)) + show(arrow) + "}"
        case s.Arrow(target=t, options=opts):
            return f" -> {show(t)}" + (" [" + ", ".join(map(show, opts)) + "]" if opts else "")
        case s.Lmax(value=v):
            return f"lmax {show(v)}"
        case s.IrrepsSum(terms=terms):
            return " + ".join(map(show, terms))
        case s.IrrepsTerm(mul=mul, body=body):
            inner = f"({show(body)})" if isinstance(body, s.IrrepsSum) else show(body)
            return inner if mul is None else f"{show(mul)} x {inner}"
        case s.IrrepLit(l=l, parity=p):
            return f"{l}{p}"
        case s.ShIrreps(lmax=v):
            return f"sh({show(v)})"
        case s.Input(name=n, type=t, axis=axis):
            return f"input {n.id} : {show(t)}" + ("" if axis is None else f" over {axis.id}")
        case s.IrrepsType(irreps=irreps):
            return show(irreps)
        case s.WeightsType():
            return "weights"
        case s.IndexType(axis=a, target=t):
            return f"index {a.id} -> {show(t)}"
        case s.Assign(name=n, value=v):
            return f"{n.id} = {show(v)}"
        case s.Output(name=n, value=v):
            return f"output {n.id}" + ("" if v is None else f" = {show(v)}")
    raise TypeError(node)


def body(text: str) -> list[str]:
    """The statements of the only diagram in ``text``, shown."""
    (diagram,) = parse(text).diagrams
    return [show(st) for st in diagram.body]


def expr(text: str) -> str:
    """An expression parsed as the right-hand side of an assignment, shown."""
    (stmt,) = body(f"diagram D() {{ y = {text} }}")
    return stmt.removeprefix("y = ")


def irreps(text: str) -> str:
    """Irreps parsed in an input declaration, shown."""
    (stmt,) = body(f"diagram D() {{ input h : {text} }}")
    return stmt.removeprefix("input h : ")


def pos(node: Any) -> tuple[int, int, int, int]:
    """The span of any syntax node as (line, column, end_line, end_column)."""
    sp = node.span
    return sp.line, sp.column, sp.end_line, sp.end_column


# ---------------------------------------------------------------- the SPEC examples


def test_nequip_example() -> None:
    prog = parse(NEQUIP, "nequip.fdg")
    (d,) = prog.diagrams
    assert d.name.id == "NequIPConv" and pos(d.name) == (2, 9, 2, 18)
    assert [(p.name.id, show(p.default)) for p in d.params] == [("mul", "32"), ("lmax", "2")]
    assert [show(st) for st in d.body] == [
        "input h : mul x (0e + 1o + 2e) over node",
        "input vec : 1o over edge",
        "input R : weights over edge",
        "input src : index edge -> node",
        "input dst : index edge -> node",
        "Y = sh(vec, lmax)",
        "m = {couple(h[src], Y) -> mul x (0e + 1o + 2e + 1e + 2o) [mode=uvu, weights=R]}",
        "agg = (sum(m, by=dst) * 0.1)",
        "output out = {linear(agg) -> mul x (0e + 1o + 2e)}",
    ]
    h, _, _, src, _, _, m, agg, out = d.body
    assert pos(h) == (3, 5, 3, 47)  # up to the axis, not the comment
    assert isinstance(h, s.Input) and h.axis is not None and pos(h.axis) == (3, 44, 3, 47)
    assert isinstance(src, s.Input) and isinstance(src.type, s.IndexType) and pos(src.type) == (6, 18, 6, 35)
    assert isinstance(m, s.Assign) and isinstance(m.value, s.Call) and m.value.arrow is not None
    assert pos(m.value) == (10, 11, 10, 87) and pos(m.value.arrow) == (10, 29, 10, 87)
    assert [o.name for o in m.value.arrow.options] == ["mode", "weights"]
    assert isinstance(agg, s.Assign) and isinstance(agg.value, s.BinOp) and show(agg.value.right) == "0.1"
    assert isinstance(out, s.Output) and pos(out) == (12, 5, 12, 52)
    assert str(out.span) == "nequip.fdg:12:5"
    assert pos(d) == (2, 1, 13, 1) and prog.uses == ()


def test_mace_example() -> None:
    assert body(MACE) == [
        "input A : mul x (0e + 1o + 2e + 3o) over node",
        "input z : index node -> species",
        "output B = {power(A, nu) -> mul x (0e + 1o) [weights=learned[z]]}",
    ]


def test_fusion_example() -> None:
    assert body(FUSION)[-1] == "output y = {fuse(a, b, c) -> mul x (0e + 1o + 2e) [weights=learned]}"


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_reparse_identically(text: str) -> None:
    # Layout is insignificant: the same program on one line, with `;`, parses to the same shapes.
    one_line = "\n".join(line.split("#")[0] for line in text.splitlines()).replace("\n", " ")
    assert [show(x) for d in parse(one_line).diagrams for x in d.body] == body(text)


# ---------------------------------------------------------------- irreps


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("16x0e + 8x1o", "16 x 0e + 8 x 1o"),
        ("0e + 1o", "0e + 1o"),
        ("2y", "2y"),
        ("mul x (0e + 1o + 2e)", "mul x (0e + 1o + 2e)"),
        ("2*mul x 0e", "(2 * mul) x 0e"),
        ("2 * mul // 4 x 0e", "((2 * mul) // 4) x 0e"),
        ("(mul + 1) x 1o", "(mul + 1) x 1o"),
        ("(mul - 1) x (1o)", "(mul - 1) x (1o)"),
        ("((mul)) x 1o", "mul x 1o"),
        ("(mul x 0e + 1o)", "(mul x 0e + 1o)"),
        ("sh(2)", "sh(2)"),
        ("sh(lmax + 1)", "sh((lmax + 1))"),
        ("mul x sh(L)", "mul x sh(L)"),
        ("2x (0e + 1o)", "2 x (0e + 1o)"),
        ("2x sh(1)", "2 x sh(1)"),
        ("x x 1o", "x x 1o"),  # a parameter named x as the multiplicity
        ("(lmax) x 1o", "lmax x 1o"),
        ("007x01e", "7 x 1e"),
        ("20e", "20e"),
    ],
)
def test_irreps_syntax(text: str, shown: str) -> None:
    assert irreps(text) == shown


def test_mulir_token_is_split_with_spans() -> None:
    (d,) = parse("diagram D() {\n  input h : 16x0e + 1o\n}").diagrams
    (h,) = d.body
    assert isinstance(h, s.Input) and isinstance(h.type, s.IrrepsType)
    term = h.type.irreps.terms[0]
    assert term.mul is not None and pos(term) == (2, 13, 2, 17)
    assert pos(term.mul) == (2, 13, 2, 14) and pos(term.body) == (2, 16, 2, 17)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("f(a) -> lmax 2", "{f(a) -> lmax 2}"),
        ("f(a) -> lmax lmax", "{f(a) -> lmax lmax}"),
        ("f(a) -> lmax (L + 1) [mode = uvw]", "{f(a) -> lmax (L + 1) [mode=uvw]}"),
        ("f(a) -> lmax 2*L", "{f(a) -> lmax (2 * L)}"),
        ("f(a) -> 0e [mode = uvu]", "{f(a) -> 0e [mode=uvu]}"),
    ],
)
def test_arrow_targets(text: str, shown: str) -> None:
    assert expr(text) == shown


def test_plus_after_arrow_irreps_continues_the_irreps() -> None:
    # The documented ambiguity: `+` after `->` irreps belongs to the irreps.
    assert expr("couple(a, b) -> 16x0e + mul x 1o") == "{couple(a, b) -> 16 x 0e + mul x 1o}"
    assert expr("(couple(a, b) -> 16x0e) + y") == "({couple(a, b) -> 16 x 0e} + y)"


# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a + b * c", "(a + (b * c))"),
        ("a * b + c", "((a * b) + c)"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b // c", "((a / b) // c)"),
        ("-a * b", "((-a) * b)"),
        ("- -a", "(-(-a))"),
        ("(a + b) * c", "((a + b) * c)"),
        ("h[src][i]", "h[src][i]"),
        ("f(a)[i]", "f(a)[i]"),
        ("Other(mul = 8)(a, b)", "Other(mul=8)(a, b)"),
        ("Other(mul = 8)(a, b) -> 1o", "{Other(mul=8)(a, b) -> 1o}"),
        ("f()", "f()"),
        ("f(a, b,)", "f(a, b)"),
        ("sum(m, by = dst)", "sum(m, by=dst)"),
        ("sum(couple(a, b) -> 0e, by = dst)", "sum({couple(a, b) -> 0e}, by=dst)"),
        ("f(a) -> 0e [tree = ((a, b), c)]", "{f(a) -> 0e [tree=((a, b), c)]}"),
        ("f(a) -> 0e [weights = learned[z], mode = uvu,]", "{f(a) -> 0e [weights=learned[z], mode=uvu]}"),
        ("f(weights = R)", "f(weights=R)"),
        ("0.1 * 1. + 1.5e-3 - .5 + 2.E+2", "((((0.1 * 1.0) + 0.0015) - 0.5) + 200.0)"),
        ("007", "7"),
    ],
)
def test_expressions(text: str, shown: str) -> None:
    assert expr(text) == shown


def test_span_of_parenthesized_operand_includes_the_parentheses() -> None:
    (d,) = parse("diagram D() { y = (a + b) * c }").diagrams
    (y,) = d.body
    assert isinstance(y, s.Assign) and isinstance(y.value, s.BinOp)
    assert pos(y.value) == (1, 19, 1, 29) and pos(y.value.left) == (1, 20, 1, 24)


def test_irreps_words_are_names_elsewhere() -> None:
    text = """
    diagram D(x = 2, lmax = 3, sh = 1) {
        input x : x x 0e + 2*lmax x 1o
        input lmax : 1o
        x2 = sh(lmax, x)
        sh2 = x * lmax * sh
        output x3 = couple(x, x2) -> lmax lmax
    }
    """
    (d,) = parse(text).diagrams
    assert [p.name.id for p in d.params] == ["x", "lmax", "sh"]
    assert [show(st) for st in d.body] == [
        "input x : x x 0e + (2 * lmax) x 1o",
        "input lmax : 1o",
        "x2 = sh(lmax, x)",
        "sh2 = ((x * lmax) * sh)",
        "output x3 = {couple(x, x2) -> lmax lmax}",
    ]


def test_statements_and_layout() -> None:
    text = """use "a.fdg"   # first
use "dir/b.fdg"
diagram A() { input a : 1o; output a; }
diagram B(k = 1,) {
    input w : weights
    input i : index node -> 10
    output
        z = f(
            a,
            b
        )
}
"""
    prog = parse(text, "f.fdg")
    assert [u.path for u in prog.uses] == ["a.fdg", "dir/b.fdg"]
    assert pos(prog.uses[1]) == (2, 1, 2, 15)
    a, b = prog.diagrams
    assert [show(x) for x in a.body] == ["input a : 1o", "output a"]
    assert [show(x) for x in b.body] == ["input w : weights", "input i : index node -> 10", "output z = f(a, b)"]
    assert pos(b.body[2]) == (7, 5, 11, 9)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.fdg")), ids=lambda p: p.stem)
def test_corpus_parses(path: Path) -> None:
    assert parse(path.read_text(), path.name).diagrams


def test_empty_and_comment_only_files() -> None:
    empty = parse("")
    assert empty.uses == empty.diagrams == () and pos(empty) == (1, 1, 1, 1)
    assert parse("# nothing\n\n").diagrams == ()


def test_docstring_example() -> None:
    assert doctest.testmod(fdg.frontend.parser).failed == 0


def test_grammar_has_no_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    # lark resolves shift/reduce conflicts silently (as shift); with debug=True it logs them.
    grammar = (Path(fdg.frontend.parser.__file__).parent / "grammar.lark").read_text()
    with caplog.at_level(logging.DEBUG, logger="lark"):
        Lark(grammar, parser="lalr", debug=True)
    assert not [r.getMessage() for r in caplog.records if "onflict" in r.getMessage()]


# ---------------------------------------------------------------- syntax errors


@pytest.mark.parametrize("path", sorted(ERRORS.glob("*.fdg")), ids=lambda p: p.stem)
def test_syntax_error_golden(path: Path) -> None:
    with pytest.raises(FdgSyntaxError) as info:
        parse(path.read_text(), path.name)
    check_golden(path.with_suffix(".expected"), str(info.value))


def test_there_are_enough_error_cases() -> None:
    assert len(list(ERRORS.glob("*.fdg"))) >= 15


@pytest.mark.parametrize(
    "text",
    [
        "diagram D() { y = " + "(" * 100_000,
        "diagram D() { y = " + "-" * 100_000 + "a }",
        "diagram D() { y = a" + "[i]" * 10_000 + " }",
        "diagram D() { input h : " + "(" * 10_000 + "0e" + ")" * 10_000 + " }",
        "diagram D() { y = " + "9" * 5000 + " }",
        "diagram D() { y = 1.0e999999 }",
        "diagram D() { input h : " + "9" * 5000 + "e }",
        "\x00\xff\ud800",
        "diagram D() { y = f(a) -> 0e [w = g(b) -> 1o [v = 1,],] + }",
    ],
    ids=["unclosed", "neg", "index", "irreps", "bigint", "inf", "bigdegree", "binary", "nested-arrows"],
)
def test_hostile_input_gives_syntax_error(text: str) -> None:
    with pytest.raises(FdgSyntaxError):
        parse(text)


def test_deep_parentheses_around_one_atom_are_fine() -> None:
    assert expr("(" * 1000 + "a" + ")" * 1000) == "a"


# ---------------------------------------------------------------- fuzzing: only FdgSyntaxError, and fast

ALPHABET = st.sampled_from([*"abxyz0123456789eoy_ ()[]{}+-*/=,:;.#\"'\n\t$>", "->", "//", "\x00", "é"])
TOKENS = st.sampled_from(
    ["diagram", "input", "output", "over", "index", "weights", "use", "lmax", "sh", "x", "->", "(", ")", "[", "]",
     "{", "}", "=", ",", ":", "+", "*", "16x0e", "1o", "1", "0.5", "mul", "couple", '"a.fdg"', "\n", "#"]
)  # fmt: skip


def parse_only_fails_cleanly(text: str) -> None:
    start = time.perf_counter()
    try:
        parse(text)
    except FdgSyntaxError as e:
        str(e)  # formatting the diagnostic must not fail either
    assert time.perf_counter() - start < 1.0


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALPHABET, max_size=80).map("".join))
def test_random_text(text: str) -> None:
    parse_only_fails_cleanly(text)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.floats(0, 1), ALPHABET | TOKENS), max_size=4
    ),
)
def test_mutated_examples(text: str, edits: list[tuple[str, float, str]]) -> None:
    for kind, where, piece in edits:
        i = int(where * len(text))
        if kind == "insert":
            text = text[:i] + piece + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + len(piece) :]
        else:
            text = text[:i] + piece + text[i + len(piece) :]
    parse_only_fails_cleanly(text)
