"""Parse ``.fdg`` text into the syntax tree of :mod:`fdg.frontend.syntax`.

The grammar lives in ``grammar.lark`` (loaded by :mod:`fdg.frontend.grammar`).  This module turns lark's parse
tree into the frozen dataclasses of :mod:`fdg.frontend.syntax` and rejects what is purely syntactic but not
expressible in the grammar (duplicate keyword arguments, bad parity letters, absurd degrees, nesting too deep).
Every lark exception becomes an :class:`~fdg.errors.FdgSyntaxError` at this boundary
(:mod:`fdg.frontend.grammar`), so that nothing else ever escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn

from lark import Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.tree import Meta

from fdg.errors import FdgSyntaxError, Source, Span
from fdg.frontend import syntax as s
from fdg.frontend.grammar import IRREPS_WHERE, RESERVED_HINT, convert, grammar, span_of

__all__ = ["MAX_DEPTH", "MAX_L", "parse"]

#: the largest degree fdg accepts anywhere, written or computed (CG tables grow as l^3: beyond it is a typo)
MAX_L = 20
MAX_DEPTH = 200  # nesting of the parse tree; later passes recurse over expressions

_MULIR = re.compile(r"([0-9]+)x([0-9]+)([A-Za-z])")


def parse(text: str, name: str = "<string>") -> s.Program:
    """Parse the text of a ``.fdg`` file; raise :class:`FdgSyntaxError` (and nothing else) if it is not valid.

    >>> prog = parse("diagram D(mul = 8) {\\n input a : mul x 1o\\n output b = linear(a) -> mul x 1o\\n}")
    >>> [d.name.id for d in prog.diagrams], prog.diagrams[0].body[1].span.line
    (['D'], 3)
    """
    source = Source(name, text)
    try:
        tree = grammar().parse(text)
    except UnexpectedInput as e:
        raise convert(e, source) from None
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
        return span_of(self.src, m)

    def _name(self, tok: Token) -> s.Name:
        if tok in s.KEYWORDS:
            _fail(f"'{tok}' is a reserved word", self._sp(tok), RESERVED_HINT)
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
            _fail(f"unexpected irreps '{tok}'", self._sp(m), IRREPS_WHERE)
        if re.fullmatch(r"[0-9]+[eE][+-]?[0-9]+", tok):
            dotted = re.sub("[eE]", ".0e", tok, count=1)
            _fail(f"'{tok}' is not a number", self._sp(m), f"a float needs a dot: {dotted}")
        _fail(f"'{tok}' is not a number or a name", self._sp(m), "write a product with '*': 2 * mul")

    add, sub, mul, div, floordiv, pow = (
        _binop("+"), _binop("-"), _binop("*"), _binop("/"), _binop("//"), _binop("**")
    )  # fmt: skip

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

    def named_term(self, m: Meta, c: list[Token]) -> s.IrrepsTerm:
        return s.IrrepsTerm(None, self._name(c[0]), self._sp(m))

    def mul_named_term(self, m: Meta, c: list[Any]) -> s.IrrepsTerm:
        return s.IrrepsTerm(c[0], self._name(c[1]), self._sp(m))

    def irrep(self, m: Meta, c: list[Token]) -> s.IrrepLit:
        return self._irrep(c[0][:-1], c[0][-1], self._sp(m))

    def bad_irrep(self, m: Meta, c: list[Token]) -> NoReturn:
        digits = re.match(r"[0-9]+", c[0])
        l_text = digits.group() if digits else "1"
        _fail(f"'{c[0]}' is not an irrep", self._sp(m), f"an irrep is a degree and a parity: {l_text}o or {l_text}e")

    def sh(self, m: Meta, c: list[Any]) -> s.ShIrreps:
        return s.ShIrreps(c[0], self._sp(m))


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
