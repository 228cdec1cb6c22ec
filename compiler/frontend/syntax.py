"""The syntax tree: frozen dataclasses mirroring the rules of ``grammar.lark``, each with its span.

The tree is what the parser produces and nothing more: names are not resolved, numbers are not
evaluated, irreps are not computed.  The checker (``fdg.checker``) gives it meaning.

Expressions are one language for numbers and wires alike (``2 * mul`` and ``0.1 * m`` share a
rule); the checker decides which is which.
"""

from __future__ import annotations

from dataclasses import dataclass

from fdg.errors import Span

#: the words of the grammar, which no name may take (the checker's built-in names are ``checker.lower.BUILTINS``)
KEYWORDS = frozenset({"diagram", "input", "output", "over", "index", "weights", "use"})

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Number:
    """An integer or float literal."""

    value: int | float
    span: Span


@dataclass(frozen=True)
class Name:
    """A reference to a parameter, an input, an assigned wire, a mode/weights word, or a function."""

    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    """``left OP right`` with OP one of ``+ - * / // **``."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    """``-operand``."""

    operand: Expr
    span: Span


@dataclass(frozen=True)
class Tuple:
    """``(a, b, ...)`` with at least two items; used by ``tree = ((a, b), c)``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Arg:
    """A call argument, positional (``name is None``) or keyword (``by = dst``)."""

    name: str | None
    value: Expr
    span: Span


@dataclass(frozen=True)
class Option:
    """One ``key = value`` inside the ``[...]`` after a call's output type."""

    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Arrow:
    """``-> IRREPS [options]`` or ``-> lmax L [options]`` after a call."""

    target: IrrepsExpr | Lmax
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Call:
    """``func(args) [-> target [options]]``; ``func`` is a Name or, for ``Other(mul = 8)(a, b)``, a Call."""

    func: Expr
    args: tuple[Arg, ...]
    arrow: Arrow | None
    span: Span


@dataclass(frozen=True)
class Index:
    """``value[index]``: a gather ``h[src]``, or ``learned[z]`` inside options."""

    value: Expr
    index: Expr
    span: Span


# ---------------------------------------------------------------- irreps


@dataclass(frozen=True)
class IrrepLit:
    """A single irrep such as ``1o``: degree and parity letter (``e``, ``o`` or ``y`` = (-1)^l)."""

    l: int
    parity: str
    span: Span


@dataclass(frozen=True)
class ShIrreps:
    """``sh(L)`` inside irreps: ``0e + 1o + 2e + ...`` up to degree L."""

    lmax: Expr
    span: Span


@dataclass(frozen=True)
class IrrepsTerm:
    """``MUL x BODY`` (``mul is None`` means multiplicity 1). ``16x0e`` is a term with mul ``16``; a body that is a
    :class:`Name` is an irreps-valued parameter (``hidden``, ``2 x hidden``)."""

    mul: Expr | None
    body: IrrepLit | ShIrreps | IrrepsSum | Name
    span: Span


@dataclass(frozen=True)
class IrrepsSum:
    """``term + term + ...``, in order (irreps are never sorted or merged by the parser)."""

    terms: tuple[IrrepsTerm, ...]
    span: Span


IrrepsExpr = IrrepsSum
#: an expression: numbers and wires share the language; an irreps value (``32x0e + 32x1o``) stands where a
#: parameter's default or a diagram call's keyword argument may be irreps
Expr = Number | Name | BinOp | Neg | Tuple | Call | Index | IrrepsSum


@dataclass(frozen=True)
class Lmax:
    """``lmax L`` as a call's target: every reachable irrep of degree at most L."""

    value: Expr
    span: Span


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class IrrepsType:
    irreps: IrrepsExpr
    span: Span


@dataclass(frozen=True)
class WeightsType:
    span: Span


@dataclass(frozen=True)
class IndexType:
    """``index AXIS -> TARGET``: TARGET is an axis name, a parameter name, or an integer literal."""

    axis: Name
    target: Name | Number
    span: Span


InputType = IrrepsType | WeightsType | IndexType


@dataclass(frozen=True)
class Input:
    """``input name : type [over axis]``; index inputs carry their axis in the type instead."""

    name: Name
    type: InputType
    axis: Name | None
    span: Span


@dataclass(frozen=True)
class Assign:
    """``name = value``."""

    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class Output:
    """``output name = value`` or ``output name`` (``value is None``: output an existing wire)."""

    name: Name
    value: Expr | None
    span: Span


Statement = Input | Assign | Output


@dataclass(frozen=True)
class Param:
    """``name = default`` in a diagram's header."""

    name: Name
    default: Expr
    span: Span


@dataclass(frozen=True)
class Diagram:
    name: Name
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    span: Span


@dataclass(frozen=True)
class Use:
    """``use "other.fdg"``: makes the diagrams of another file callable."""

    path: str
    span: Span


@dataclass(frozen=True)
class Program:
    """A whole file: its ``use`` lines and its diagrams, in source order."""

    uses: tuple[Use, ...]
    diagrams: tuple[Diagram, ...]
    span: Span

    @property
    def names(self) -> list[str]:
        """The names of its diagrams, in source order."""
        return [d.name.id for d in self.diagrams]
