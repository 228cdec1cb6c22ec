"""The lark side of the frontend: the grammar (``grammar.lark``: LALR, contextual lexer) and its exceptions as
:class:`~fdg.errors.FdgSyntaxError`, saying what was expected in the words a user would use.

An LALR parser reports the token it could not shift and the terminals it would have taken; :func:`convert` reads
that, the parser's stack and the source to say what is wrong where (an unclosed bracket, a keyword used as a name,
``->`` in the middle of an expression, ...), with a hint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr
from lark.tree import Meta

from fdg.errors import FdgSyntaxError, Source, Span
from fdg.frontend.syntax import KEYWORDS

#: the reserved words that start a statement or a file item; the lexer never reads them as names
_STATEMENT_WORDS = frozenset({"diagram", "input", "output", "use"})
RESERVED_HINT = "choose another name; reserved words: " + ", ".join(sorted(KEYWORDS))
IRREPS_WHERE = "irreps are written after ':' in an input or after '->' following a call"
_PAIRS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}


@cache
def grammar() -> Lark:
    """The parser of ``grammar.lark``, built once."""
    return Lark(Path(__file__).with_name("grammar.lark").read_text(), parser="lalr", lexer="contextual",
                propagate_positions=True)  # fmt: skip


def span_of(source: Source, m: Meta | Token) -> Span:
    """The span of a parse-tree node or token (lark's end column points just past it; a Span's is inclusive)."""
    assert m.line is not None and m.column is not None and m.end_line is not None and m.end_column is not None
    return Span(source, m.line, m.column, m.end_line, m.end_column - 1)


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
    pattern = grammar().get_terminal(terminal).pattern
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


def _eofspan(source: Source) -> Span:
    lines = source.text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return Span(source, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 1)


def convert(e: UnexpectedInput, source: Source) -> FdgSyntaxError:
    if isinstance(e, UnexpectedCharacters):
        span = Span(source, e.line, e.column, e.line, e.column)
        if e.char == '"':
            return FdgSyntaxError("unterminated string", span, 'write the path on one line: use "other.fdg"')
        char = e.char if e.char.isprintable() else ascii(e.char)[1:-1]
        return FdgSyntaxError(f"unexpected character '{char}'", span)
    if not isinstance(e, UnexpectedToken):  # not raised by an LALR parser; kept for safety
        return FdgSyntaxError("syntax error", _eofspan(source))
    tok, expected = e.token, set(e.expected)
    if e.interactive_parser is not None:
        # The lexer's `expected` lacks keywords, and LALR tables list lookaheads merged from other
        # contexts; accepts() tries each terminal on a copy of the parser and keeps the real ones.
        with contextlib.suppress(Exception):  # lark internals on an odd state; the cruder set still serves
            expected = e.interactive_parser.accepts()
    stack = getattr(e.state, "value_stack", [])
    previous = stack[-1] if stack else None
    unclosed = _unclosed(stack)
    span = _eofspan(source) if tok.type == "$END" else span_of(source, tok)
    if tok.type == "$END" and unclosed:
        opener = unclosed[-1]
        closer = _spell(_PAIRS[opener.type])
        return FdgSyntaxError(
            f"'{opener}' is never closed", span_of(source, opener), f"the file ends before its {closer}"
        )
    if isinstance(previous, Tree) and previous.data in ("int_lit", "name"):  # the parser may have reduced it
        previous = previous.children[0]
    if tok in _STATEMENT_WORDS and all(t.type == "LBRACE" for t in unclosed):
        # never a name (see NAME in grammar.lark): `input a :` then `output b` stops at `output`
        hint = f"'{tok}' is a reserved word; is something missing before it?"
        return FdgSyntaxError(f"unexpected '{tok}'", span, hint)
    if isinstance(previous, Token) and previous.type == "NAME" and previous in KEYWORDS:
        # Another keyword where it is not allowed is lexed as a name (`x = over`); the error is after it.
        hint = f"'{previous}' is a reserved word; is something missing before it?"
        return FdgSyntaxError(f"unexpected '{previous}'", span_of(source, previous), hint)
    arrows = [i for i, v in enumerate(stack) if isinstance(v, Token) and v.type == "_ARROW"]
    if "X" in expected and arrows and isinstance(previous, Token) and previous.type == "NAME" and stack[-2] == "+":
        # `f(a) -> 16x0e + y`: the documented ambiguity; `+` continued the irreps, `y` became a multiplicity.
        hint = f"after '->', '+' continues the irreps; to add the wire, parenthesize: (f(a) -> 0e) + {previous}"
        return FdgSyntaxError(f"'{previous}' is not an irreps term", span_of(source, previous), hint)
    if "X" in expected and isinstance(previous, Token) and previous.type == "INT":
        hint = f"an irrep needs a parity: {previous}o or {previous}e; a multiplicity needs 'x': {previous}x0e"
        return FdgSyntaxError(f"'{previous}' is not an irrep", span_of(source, previous), hint)
    if tok.type == "EQUAL" and isinstance(previous, Token) and previous.type == "X":
        # `input a : hidden` then `x = ...`: `hidden x` read as a multiplicity and its `x`
        hint = "after a type ending in a name, 'x' continues the irreps: end the type with `over AXIS`, or rename x"
        return FdgSyntaxError("'x =' after irreps reads as a multiplicity 'x'", span_of(source, previous), hint)
    if tok.type == "EQUAL" and isinstance(previous, Token) and previous in KEYWORDS:
        return FdgSyntaxError(f"'{previous}' is a reserved word", span_of(source, previous), RESERVED_HINT)
    if tok.type == "_ARROW":
        hint = "'->' must directly follow a call that ends the expression: write (f(a) -> 0e) or 2 * (f(a) -> 0e)"
        return FdgSyntaxError("unexpected '->'", span, hint)
    if tok.type in _OPERATORS and arrows and not _unclosed(stack[arrows[-1] :]):  # right after `-> TYPE [...]`
        hint = "'->' ends its expression; parenthesize to compute with it: (f(a) -> 0e) * 2, or lmax (L + 1)"
        return FdgSyntaxError(f"unexpected {_found(tok)}", span, hint)
    if tok.type in ("IRREP", "MULIR"):
        return FdgSyntaxError(f"unexpected {_found(tok)}", span, IRREPS_WHERE)
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
