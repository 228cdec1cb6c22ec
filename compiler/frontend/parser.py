"""Parse ``.fdg`` text into the syntax tree of :mod:`fdg.frontend.syntax`.

The grammar lives in ``grammar.lark`` (LALR, contextual lexer).  This module does three things:
turns lark's parse tree into the frozen dataclasses of :mod:`fdg.frontend.syntax`, rejects what is purely
syntactic but not expressible in the grammar (duplicate keyword arguments, bad parity letters,
absurd degrees, nesting too deep), and converts every lark exception into an
:class:`~fdg.errors.FdgSyntaxError` at this boundary, so that nothing else ever escapes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import PatternStr
from lark.tree import Meta

from fdg.errors import FdgSyntaxError, Source, Span
from fdg.frontend import syntax as s

__all__ = ["KEYWORDS", "MAX_DEPTH", "MAX_L", "parse"]

#: the words of the grammar, which no name may take (the checker's built-in names are ``checker.lower.BUILTINS``)
KEYWORDS = frozenset({"diagram", "input", "output", "over", "index", "weights", "use"})
#: the largest degree fdg accepts anywhere, written or computed (CG tables grow as l^3: beyond it is a typo)
MAX_L = 20
MAX_DEPTH = 200  # nesting of the parse tree; later passes recurse over expressions

_GRAMMAR = Path(__file__).with_name("grammar.lark")
_MULIR = re.compile(r"([0-9]+)x([0-9]+)([A-Za-z])")
_PAIRS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}


@cache
def _lark() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", lexer="contextual", propagate_positions=True)


def parse(text: str, name: str = "<string>") -> s.Program:
    """Parse the text of a ``.fdg`` file; raise :class:`FdgSyntaxError` (and nothing else) if it is not valid.

    >>> prog = parse("diagram D(mul = 8) {\\n input a : mul x 1o\\n output b = linear(a) -> mul x 1o\\n}")
    >>> [d.name.id for d in prog.diagrams], prog.diagrams[0].body[1].span.line
    (['D'], 3)
    """
    source = Source(name, text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        raise _convert(e, source) from None
    _check_depth(tree, source)
    try:
        program = _ToSyntax(source).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, FdgSyntaxError):
            raise e.orig_exc from None
        raise
    assert isinstance(program, s.Program)
    return program


# ---------------------------------------------------------------- parse tree -> syntax tree


def _span(source: Source, m: Meta | Token) -> Span:
    # lark's end column points just past the last character; Span's is inclusive.
    assert m.line is not None and m.column is not None and m.end_line is not None and m.end_column is not None
    return Span(source, m.line, m.column, m.end_line, m.end_column - 1)


def _fail(message: str, span: Span, hint: str | None = None) -> NoReturn:
    raise FdgSyntaxError(message, span, hint)


def _binop(op: str) -> Callable[[_ToSyntax, Meta, list[Any]], s.BinOp]:
    def method(self: _ToSyntax, m: Meta, c: list[Any]) -> s.BinOp:
        return s.BinOp(op, c[0], c[1], self._sp(m))

    return method


@v_args(meta=True)
class _ToSyntax(Transformer_NonRecursive):
    """One method per rule (or alias) of grammar.lark; non-recursive so deep input cannot overflow."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.src = source

    def _sp(self, m: Meta | Token) -> Span:
        return _span(self.src, m)

    def _name(self, tok: Token) -> s.Name:
        if tok in KEYWORDS:
            _fail(f"'{tok}' is a reserved word", self._sp(tok), _RESERVED_HINT)
        return s.Name(str(tok), self._sp(tok))

    def _opt_name(self, tok: Token | None) -> s.Name | None:
        return None if tok is None else self._name(tok)

    def _int(self, tok: Token) -> int:
        if len(tok.lstrip("0")) > 18:  # also keeps int() clear of Python's limit on digits
            _fail(f"integer literal '{tok[:12]}...' is too long", self._sp(tok))
        return int(tok)

    def _irrep(self, l_text: str, parity: str, span: Span) -> s.IrrepLit:
        if parity not in "eoy":
            _fail(f"'{l_text}{parity}' is not an irrep: the parity must be e, o or y", span,
                  f"e is even, o is odd, y is (-1)^l; did you mean {l_text}e or {l_text}o?")  # fmt: skip
        if len(l_text.lstrip("0")) > 3 or int(l_text) > MAX_L:
            _fail(f"irrep degree {l_text} is too large", span, f"degrees up to {MAX_L} are supported")
        return s.IrrepLit(int(l_text), parity, span)

    # -- file, diagrams, statements
    def start(self, m: Meta, items: list[Any]) -> s.Program:
        span = self._sp(m) if not m.empty else Span(self.src, 1, 1, 1, 1)
        uses = tuple(i for i in items if isinstance(i, s.Use))
        return s.Program(uses, tuple(i for i in items if isinstance(i, s.Diagram)), span)

    def use(self, m: Meta, c: list[Token]) -> s.Use:
        return s.Use(c[0][1:-1], self._sp(m))

    def diagram(self, m: Meta, c: list[Any]) -> s.Diagram:
        params = tuple(i for i in c[1:] if isinstance(i, s.Param))
        for i, p in enumerate(params):
            if any(q.name.id == p.name.id for q in params[:i]):
                _fail(f"duplicate parameter '{p.name.id}'", p.name.span)
        body = tuple(i for i in c[1:] if isinstance(i, s.Input | s.Assign | s.Output))
        return s.Diagram(self._name(c[0]), params, body, self._sp(m))

    def param(self, m: Meta, c: list[Any]) -> s.Param:
        return s.Param(self._name(c[0]), c[1], self._sp(m))

    def irreps_input(self, m: Meta, c: list[Any]) -> s.Input:
        irreps_type = s.IrrepsType(c[1], c[1].span)
        return s.Input(self._name(c[0]), irreps_type, self._opt_name(c[2]), self._sp(m))

    def weights_input(self, m: Meta, c: list[Any]) -> s.Input:
        return s.Input(self._name(c[0]), s.WeightsType(self._sp(c[1])), self._opt_name(c[2]), self._sp(m))

    def index_input(self, m: Meta, c: list[Any]) -> s.Input:
        index_type = s.IndexType(self._name(c[2]), c[3], self._sp(c[1]).to(c[3].span))
        return s.Input(self._name(c[0]), index_type, None, self._sp(m))

    def assign(self, m: Meta, c: list[Any]) -> s.Assign:
        return s.Assign(self._name(c[0]), c[1], self._sp(m))

    def output(self, m: Meta, c: list[Any]) -> s.Output:
        return s.Output(self._name(c[0]), c[1], self._sp(m))

    # -- expressions (the multiplicity sub-language shares these methods)
    def name(self, m: Meta, c: list[Token]) -> s.Name:
        return self._name(c[0])

    def int_lit(self, m: Meta, c: list[Token]) -> s.Number:
        return s.Number(self._int(c[0]), self._sp(m))

    def float_lit(self, m: Meta, c: list[Token]) -> s.Number:
        value = float(c[0])
        if value == float("inf"):
            _fail(f"number '{c[0]}' is too large", self._sp(m))
        return s.Number(value, self._sp(m))

    def badnum(self, m: Meta, c: list[Token]) -> NoReturn:
        tok = c[0]
        if re.fullmatch(r"[0-9]+(x[0-9]+)?[A-WYZa-wyz]", tok):
            _fail(f"unexpected irreps '{tok}'", self._sp(m), _IRREPS_WHERE)
        if re.fullmatch(r"[0-9]+[eE][+-]?[0-9]+", tok):
            dotted = re.sub("[eE]", ".0e", tok, count=1)
            _fail(f"'{tok}' is not a number", self._sp(m), f"a float needs a dot: {dotted}")
        _fail(f"'{tok}' is not a number or a name", self._sp(m), "write a product with '*': 2 * mul")

    add, sub, mul, div, floordiv = (_binop("+"), _binop("-"), _binop("*"), _binop("/"), _binop("//"))

    def neg(self, m: Meta, c: list[Any]) -> s.Neg:
        return s.Neg(c[0], self._sp(m))

    def tuple_lit(self, m: Meta, c: list[Any]) -> s.Tuple:
        return s.Tuple(tuple(c), self._sp(m))

    def index(self, m: Meta, c: list[Any]) -> s.Index:
        return s.Index(c[0], c[1], self._sp(m))

    def call(self, m: Meta, c: list[Any]) -> s.Call:
        return s.Call(c[0], c[1] or (), None, self._sp(m))

    def arrow_call(self, m: Meta, c: list[Any]) -> s.Call:
        return s.Call(c[0], c[1] or (), c[2], self._sp(m))

    def args(self, m: Meta, c: list[s.Arg | None]) -> tuple[s.Arg, ...]:
        args = tuple(a for a in c if a is not None)
        for i, a in enumerate(args):
            if a.name is None and any(b.name is not None for b in args[:i]):
                _fail("positional argument after a keyword argument", a.span, "put positional arguments first")
            if a.name is not None and any(b.name == a.name for b in args[:i]):
                _fail(f"duplicate keyword argument '{a.name}'", a.span)
        return args

    def kwarg(self, m: Meta, c: list[Any]) -> s.Arg:
        return s.Arg(str(c[0]), c[1], self._sp(m))

    def posarg(self, m: Meta, c: list[Any]) -> s.Arg:
        return s.Arg(None, c[0], self._sp(m))

    def arrow(self, m: Meta, c: list[Any]) -> s.Arrow:
        return s.Arrow(c[0], c[1] or (), self._sp(m))

    def options(self, m: Meta, c: list[s.Option | None]) -> tuple[s.Option, ...]:
        options = tuple(o for o in c if o is not None)
        for i, o in enumerate(options):
            if any(p.name == o.name for p in options[:i]):
                _fail(f"duplicate option '{o.name}'", o.span)
        return options

    def option(self, m: Meta, c: list[Any]) -> s.Option:
        return s.Option(str(c[0]), c[1], self._sp(m))

    # -- irreps
    def lmax(self, m: Meta, c: list[Any]) -> s.Lmax:
        return s.Lmax(c[0], self._sp(m))

    def irreps(self, m: Meta, c: list[s.IrrepsTerm]) -> s.IrrepsSum:
        return s.IrrepsSum(tuple(c), self._sp(m))

    def mulir_term(self, m: Meta, c: list[Token]) -> s.IrrepsTerm:
        tok = c[0]  # `16x0e`: one token, split here into its multiplicity and its irrep
        match = _MULIR.fullmatch(tok)
        assert match is not None and tok.line is not None and tok.column is not None
        mul, l_text, parity = match.groups()
        line, col = tok.line, tok.column
        mul_span = Span(self.src, line, col, line, col + len(mul) - 1)
        lit_span = Span(self.src, line, col + len(mul) + 1, line, col + len(tok) - 1)
        mul_value = self._int(Token("INT", mul, line=line, column=col, end_line=line, end_column=col + len(mul)))
        return s.IrrepsTerm(s.Number(mul_value, mul_span), self._irrep(l_text, parity, lit_span), self._sp(m))

    def mul_term(self, m: Meta, c: list[Any]) -> s.IrrepsTerm:
        return s.IrrepsTerm(c[0], c[1], self._sp(m))

    def plain_term(self, m: Meta, c: list[Any]) -> s.IrrepsTerm:
        return s.IrrepsTerm(None, c[0], self._sp(m))

    def irrep(self, m: Meta, c: list[Token]) -> s.IrrepLit:
        return self._irrep(c[0][:-1], c[0][-1], self._sp(m))

    def bad_irrep(self, m: Meta, c: list[Token]) -> NoReturn:
        digits = re.match(r"[0-9]+", c[0])
        l_text = digits.group() if digits else "1"
        _fail(f"'{c[0]}' is not an irrep", self._sp(m), f"an irrep is a degree and a parity: {l_text}o or {l_text}e")

    def sh(self, m: Meta, c: list[Any]) -> s.ShIrreps:
        return s.ShIrreps(c[0], self._sp(m))


_RESERVED_HINT = "choose another name; reserved words: " + ", ".join(sorted(KEYWORDS))
_IRREPS_WHERE = "irreps are written after ':' in an input or after '->' following a call"


def _check_depth(tree: Tree, source: Source) -> None:
    """Reject trees nested deeper than MAX_DEPTH (iteratively, so the check itself cannot overflow)."""
    stack: list[tuple[Tree, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:  # point at where the too-deep part starts; its whole span may be huge
            at = Span(source, node.meta.line, node.meta.column, node.meta.line, node.meta.column)
            hint = "each operator in a chain like a + b + c is one level; split it into several assignments"
            _fail(f"too deeply nested (more than {MAX_DEPTH} levels)", at, hint)
        # Children pushed right to left, so the leftmost too-deep node is found first.
        stack.extend((child, depth + 1) for child in reversed(node.children) if isinstance(child, Tree))


# ---------------------------------------------------------------- lark exceptions -> FdgSyntaxError

# How terminals that are patterns read in a message; string terminals read as themselves ('(').
_SPELLING = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": 'a quoted path like "other.fdg"',
    "IRREP": "an irrep", "MULIR": "an irreps term", "_MINUS": "'-'", "$END": "the end of the file",
}  # fmt: skip
_FOUND = {"NAME": "name", "INT": "number", "FLOAT": "number", "BADNUM": "number", "IRREP": "irrep",
          "MULIR": "irreps", "BADIRREP": "number", "STRING": "string"}  # fmt: skip
# Several expected terminals that together mean one thing the user would name.
_GROUPS = [
    ("irreps", {"IRREP", "MULIR", "SH", "NAME", "INT", "LPAR"}),
    ("an expression", {"NAME", "INT", "FLOAT", "LPAR", "_MINUS"}),
    ("a statement", {"INPUT", "OUTPUT", "NAME"}),
]
# Tokens that would merely continue what came before; listed only if nothing else is expected.
_CONTINUATIONS = {"PLUS", "_MINUS", "STAR", "SLASH", "_DSLASH", "LPAR", "LSQB", "SEMICOLON", "EQUAL"}
_OPERATORS = {"PLUS", "_MINUS", "STAR", "SLASH", "_DSLASH"}
_INTERNAL = {"WS", "COMMENT", "BADNUM", "BADIRREP"}


def _spell(terminal: str) -> str:
    if terminal in _SPELLING:
        return _SPELLING[terminal]
    pattern = _lark().get_terminal(terminal).pattern
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else terminal.lower()


def _expected(terminals: Iterable[str]) -> str:
    names = set(terminals) - _INTERNAL
    words = []
    for word, group in _GROUPS:
        if group <= names:
            words.append(word)
            names -= group
    if words or names - _CONTINUATIONS:
        names -= _CONTINUATIONS
    words = sorted(_spell(t) for t in names) + words
    if not words:  # not seen in practice; a message must still come out
        return "a different token"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type in ("X", "LMAX", "SH"):  # keywords only inside irreps; elsewhere the user meant a name
        return f"name '{tok}'"
    kind = _FOUND.get(tok.type)
    return f"{kind} '{tok}'" if kind else f"'{tok}'"


def _unclosed(value_stack: Sequence[Any]) -> list[Token]:
    """Opening brackets still waiting for their partner: the LALR value stack holds them until reduced."""
    opened: list[Token] = []
    for value in value_stack:
        if isinstance(value, Token) and value.type in _PAIRS:
            opened.append(value)
        elif isinstance(value, Token) and value.type in _PAIRS.values() and opened:
            opened.pop()
    return opened


def _eof_span(source: Source) -> Span:
    lines = source.text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return Span(source, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 1)


def _convert(e: UnexpectedInput, source: Source) -> FdgSyntaxError:
    if isinstance(e, UnexpectedCharacters):
        span = Span(source, e.line, e.column, e.line, e.column)
        if e.char == '"':
            return FdgSyntaxError("unterminated string", span, 'write the path on one line: use "other.fdg"')
        char = e.char if e.char.isprintable() else ascii(e.char)[1:-1]
        return FdgSyntaxError(f"unexpected character '{char}'", span)
    if not isinstance(e, UnexpectedToken):  # not raised by an LALR parser; kept for safety
        return FdgSyntaxError("syntax error", _eof_span(source))
    tok, expected = e.token, set(e.expected)
    if e.interactive_parser is not None:
        # The lexer's `expected` lacks keywords, and LALR tables list lookaheads merged from other
        # contexts; accepts() tries each terminal on a copy of the parser and keeps the real ones.
        with contextlib.suppress(Exception):  # lark internals on an odd state; the cruder set still serves
            expected = e.interactive_parser.accepts()
    stack = getattr(e.state, "value_stack", [])
    previous = stack[-1] if stack else None
    unclosed = _unclosed(stack)
    span = _eof_span(source) if tok.type == "$END" else _span(source, tok)
    if tok.type == "$END" and unclosed:
        opener = unclosed[-1]
        closer = _spell(_PAIRS[opener.type])
        return FdgSyntaxError(
            f"'{opener}' is never closed", _span(source, opener), f"the file ends before its {closer}"
        )
    if isinstance(previous, Tree) and previous.data in ("int_lit", "name"):  # the parser may have reduced it
        previous = previous.children[0]
    if isinstance(previous, Token) and previous.type == "NAME" and previous in KEYWORDS:
        # A keyword where it is not allowed is lexed as a name (`input a :` then `output b`); the error is there.
        hint = f"'{previous}' is a reserved word; is something missing before it?"
        return FdgSyntaxError(f"unexpected '{previous}'", _span(source, previous), hint)
    arrows = [i for i, v in enumerate(stack) if isinstance(v, Token) and v.type == "_ARROW"]
    if "X" in expected and arrows and isinstance(previous, Token) and previous.type == "NAME" and stack[-2] == "+":
        # `f(a) -> 16x0e + y`: the documented ambiguity; `+` continued the irreps, `y` became a multiplicity.
        hint = f"after '->', '+' continues the irreps; to add the wire, parenthesize: (f(a) -> 0e) + {previous}"
        return FdgSyntaxError(f"'{previous}' is not an irreps term", _span(source, previous), hint)
    if "X" in expected and isinstance(previous, Token) and previous.type == "INT":
        hint = f"an irrep needs a parity: {previous}o or {previous}e; a multiplicity needs 'x': {previous}x0e"
        return FdgSyntaxError(f"'{previous}' is not an irrep", _span(source, previous), hint)
    if tok.type == "EQUAL" and isinstance(previous, Token) and previous in KEYWORDS:
        return FdgSyntaxError(f"'{previous}' is a reserved word", _span(source, previous), _RESERVED_HINT)
    if tok.type == "_ARROW":
        hint = "'->' must directly follow a call that ends the expression: write (f(a) -> 0e) or 2 * (f(a) -> 0e)"
        return FdgSyntaxError("unexpected '->'", span, hint)
    if tok.type in _OPERATORS and arrows and not _unclosed(stack[arrows[-1] :]):  # right after `-> TYPE [...]`
        hint = "'->' ends its expression; parenthesize to compute with it: (f(a) -> 0e) * 2, or lmax (L + 1)"
        return FdgSyntaxError(f"unexpected {_found(tok)}", span, hint)
    if tok.type in ("IRREP", "MULIR"):
        return FdgSyntaxError(f"unexpected {_found(tok)}", span, _IRREPS_WHERE)
    hint = f"expected {_expected(expected)}"
    # Mention an open bracket left on an earlier line (not a diagram's '{': that one is always open).
    if (
        unclosed
        and unclosed[-1].type != "LBRACE"
        and _PAIRS[unclosed[-1].type] in expected
        and unclosed[-1].line != tok.line
    ):
        hint += f" (the {_spell(unclosed[-1].type)} on line {unclosed[-1].line} is still open)"
    return FdgSyntaxError(f"unexpected {_found(tok)}", span, hint)
