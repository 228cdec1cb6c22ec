"""Compile-time evaluation: a diagram's parameter values, parameter expressions, multiplicities and irreps expressions.

Everything here is pure: a syntax expression and an environment of parameter values in, a
number or an :class:`~fdg.runtime.Irreps` out, or an :class:`~fdg.errors.FdgTypeError` located
at the offending subexpression.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from typing import TypeAlias

from fdg.errors import FdgArgumentError, FdgTypeError, Span
from fdg.frontend import syntax
from fdg.frontend.parser import MAX_L
from fdg.runtime import Irrep, Irreps

Number: TypeAlias = int | float
#: what a diagram parameter holds: a number (``mul = 32``) or irreps (``hidden = 32x0e + 32x1o``)
ParamValue: TypeAlias = Number | Irreps


def parameter(name: str, value: object) -> ParamValue:
    """A parameter value as the checker reads it, the same in every process: any integer (``numpy.int64(3)``) is an
    ``int``, a float with an integral value (``4.0``) too, any other real a ``float``; irreps given as fdg's or
    e3nn's ``Irreps``, a string (``"32x0e + 32x1o"``) or ``(mul, (l, p))`` pairs are :class:`Irreps`; the rest is
    refused."""
    if isinstance(value, str | tuple | list):
        try:
            return Irreps(value if isinstance(value, str | list) else [(m, (ir[0], ir[1])) for m, ir in value])
        except (ValueError, TypeError, IndexError) as error:
            raise FdgArgumentError(f"parameter '{name}' must be a number or irreps, got {value!r}: {error}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FdgArgumentError(f"parameter '{name}' must be a number or irreps, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    real = float(value)
    if not math.isfinite(real):
        raise FdgArgumentError(f"parameter '{name}' must be a finite number, got {value!r}")
    return int(real) if real.is_integer() else real


def bind_parameters(
    diagram: syntax.Diagram, overrides: Mapping[str, object], builtins: frozenset[str]
) -> dict[str, ParamValue]:
    """A diagram's parameter values: each default, in order (a default may use the parameters before it), replaced by
    its override, which must be of the default's kind (a number, or irreps)."""
    name = diagram.name.id
    declared = [p.name.id for p in diagram.params]
    for key in overrides:
        if key not in declared:
            raise FdgArgumentError(
                f"diagram {name} has no parameter '{key}'", hint=f"its parameters: {', '.join(declared) or 'none'}"
            )
    env: dict[str, ParamValue] = {}
    for p in diagram.params:
        if p.name.id in env:
            raise FdgTypeError(f"parameter '{p.name.id}' is declared twice", p.name.span)
        if p.name.id in builtins:
            raise FdgTypeError(
                f"'{p.name.id}' is a built-in name and cannot name a parameter",
                p.name.span,
                f"rename it, e.g. '{p.name.id}_'",
            )
        default: ParamValue
        if isinstance(p.default, syntax.IrrepsSum):
            default = irreps(p.default, env)
        else:
            default = number(p.default, env, "a parameter default")
        if p.name.id not in overrides:
            env[p.name.id] = default
            continue
        given = parameter(p.name.id, overrides[p.name.id])
        if isinstance(given, Irreps) != isinstance(default, Irreps):
            kinds = ("irreps", "a number") if isinstance(default, Irreps) else ("a number", "irreps")
            example = "irreps, e.g. 16x0e+16x1o" if isinstance(default, Irreps) else "a number"
            raise FdgArgumentError(
                f"parameter '{p.name.id}' of {name} holds {kinds[0]} (default {default}), got {kinds[1]}: {given}",
                hint=f"give {p.name.id} as {example}",
            )
        env[p.name.id] = given
    return env


#: largest multiplicity fdg accepts (keeps a typo like 10000000x0e from allocating gigabytes)
MAX_MUL = 1 << 16
#: most weights one vertex may hold (2^28 float32 weights are 1 GiB: beyond this is a typo, not a model)
MAX_WEIGHTS = 1 << 28


def suggest(name: str, candidates: list[str]) -> str | None:
    """``did you mean 'couple'?`` for a misspelled name, or None."""
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"did you mean '{close[0]}'?" if close else None


def binary(op: str, left: Number, right: Number, span: Span) -> Number:
    """Apply a binary operator to two numbers, with division by zero, powers that are not real and overflow as user
    errors."""
    if op in ("/", "//") and right == 0:
        raise FdgTypeError("division by zero", span)
    if op == "**":
        return _power(left, right, span)
    ops: dict[str, Callable[[Number, Number], Number]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "//": lambda a, b: a // b,
    }
    return _finite(ops[op](left, right), span)


def _finite(result: Number, span: Span) -> Number:
    if isinstance(result, float) and not math.isfinite(result):
        raise FdgTypeError("this expression overflows", span)
    if isinstance(result, int) and abs(result) > 1 << 62:
        raise FdgTypeError("this expression overflows", span)
    return result


def _power(base: Number, exponent: Number, span: Span) -> Number:
    """``base ** exponent``: an integer for integers and a non-negative integer exponent (as in Python), else a float;
    sized before it is computed (``2 ** 10 ** 9`` would take minutes)."""
    if base == 0 and exponent < 0:
        raise FdgTypeError("division by zero", span, "0 to a negative power")
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise FdgTypeError(
            f"({base}) ** {exponent} is not a real number", span, "a negative number to a fractional power"
        )
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        if abs(base) > 1 and exponent * math.log2(abs(base)) > 62:
            raise FdgTypeError("this expression overflows", span)
        return _finite(base**exponent, span)
    try:
        return _finite(float(base) ** float(exponent), span)
    except OverflowError:
        raise FdgTypeError("this expression overflows", span) from None


#: the named constants of parameter expressions (a parameter or a wire of the same name takes precedence)
CONSTANTS: dict[str, float] = {"pi": math.pi}

#: the functions of parameter expressions: name -> (what it takes, the function); ``sqrt(5 / 6)``, ``max(a, 2)``
FUNCTIONS: dict[str, tuple[str, Callable[..., float]]] = {
    "sqrt": ("x >= 0", math.sqrt),
    "exp": ("x", math.exp),
    "log": ("x > 0", math.log),
    "sin": ("x", math.sin),
    "cos": ("x", math.cos),
    "min": ("two or more numbers", min),
    "max": ("two or more numbers", max),
}


def function(name: str, args: list[Number], span: Span) -> Number:
    """``name(args)`` of :data:`FUNCTIONS` on numbers; a wrong count, a value outside the function's domain or an
    overflow is a user error at the call."""
    takes, f = FUNCTIONS[name]
    several = name in ("min", "max")
    if (len(args) < 2) if several else len(args) != 1:
        count = "two or more numbers" if several else "one number"
        raise FdgTypeError(f"{name} takes {count}, got {len(args)} argument(s)", span)
    try:
        return _finite(f(*args), span)
    except ValueError:
        raise FdgTypeError(
            f"{name}({', '.join(map(str, args))}) is not a real number", span, f"{name} takes {takes}"
        ) from None
    except OverflowError:
        raise FdgTypeError("this expression overflows", span) from None


def number(expr: syntax.Expr, env: Mapping[str, ParamValue], what: str = "a number") -> Number:
    """Evaluate a constant expression over parameters (``2 * mul``, ``0.5``)."""
    match expr:
        case syntax.Number(value=value):
            return value
        case syntax.Name(id=name, span=span):
            if name in env:
                return _number_parameter(expr, env[name], what)
            if name in CONSTANTS:
                return CONSTANTS[name]
            raise FdgTypeError(
                f"unknown parameter '{name}'",
                span,
                suggest(name, list(env)) or f"{what} must be computed from numbers and parameters",
            )
        case syntax.Neg(operand=operand):
            return -number(operand, env, what)
        case syntax.BinOp(op=op, left=left, right=right, span=span):
            return binary(op, number(left, env, what), number(right, env, what), span)
        case syntax.Call(func=syntax.Name(id=name), args=args, arrow=None, span=span) if name in FUNCTIONS:
            return function(name, [number(positional(a, name), env, what) for a in args], span)
        case _:
            raise FdgTypeError(f"expected {what}, a constant expression of numbers and parameters", expr.span)


def _number_parameter(name: syntax.Name, value: ParamValue, what: str) -> Number:
    if isinstance(value, Irreps):
        raise FdgTypeError(
            f"parameter '{name.id}' holds irreps ({value}), not a number",
            name.span,
            f"{what} is needed here; irreps parameters stand in types: `input x : {name.id}`, `-> {name.id}`",
        )
    return value


def positional(arg: syntax.Arg, name: str) -> syntax.Expr:
    """A function's argument, which has no keyword."""
    if arg.name is not None:
        raise FdgTypeError(f"{name} takes its arguments by position", arg.span)
    return arg.value


def integer(expr: syntax.Expr, env: Mapping[str, ParamValue], what: str, low: int, high: int) -> int:
    """Evaluate an integer in ``[low, high]``; floats and out-of-range values are errors."""
    value = number(expr, env, what)
    if isinstance(value, float):
        raise FdgTypeError(
            f"{what} must be an integer, got {value!r}",
            expr.span,
            "use // for integer division" if isinstance(expr, syntax.BinOp) else None,
        )
    if not low <= value <= high:
        bound = f"at least {low}" if value < low else f"at most {high}"
        raise FdgTypeError(f"{what} must be {bound}, got {value}", expr.span)
    return value


def irreps(expr: syntax.IrrepsSum, env: Mapping[str, ParamValue]) -> Irreps:
    """Evaluate an irreps expression: ``mul x (0e + 1o)`` distributes, ``sh(L)`` expands.

    >>> from fdg.frontend.parser import parse
    >>> d = parse("diagram D(mul = 4) { input x : mul x (0e + 1o) + 2x2e }").diagrams[0]
    >>> str(irreps(d.body[0].type.irreps, {"mul": 4}))
    '4x0e+4x1o+2x2e'
    """
    out: list[tuple[int, Irrep]] = []
    for term in expr.terms:
        mul = 1 if term.mul is None else integer(term.mul, env, "a multiplicity", 1, MAX_MUL)
        body = term.body
        if isinstance(body, syntax.IrrepLit):
            p = {"e": 1, "o": -1, "y": (-1) ** body.l}[body.parity]
            inner = Irreps([(1, Irrep(body.l, p))])
        elif isinstance(body, syntax.Name):
            inner = _irreps_parameter(body, env)
        elif isinstance(body, syntax.ShIrreps):
            inner = Irreps.spherical_harmonics(integer(body.lmax, env, "the degree of sh", 0, MAX_L))
        else:
            inner = irreps(body, env)
        for mul_ir in inner:
            total = mul * mul_ir.mul
            if total > MAX_MUL:
                raise FdgTypeError(f"multiplicity {total} is too large (at most {MAX_MUL})", term.span)
            out.append((total, mul_ir.ir))
    return Irreps(out)


def _irreps_parameter(name: syntax.Name, env: Mapping[str, ParamValue]) -> Irreps:
    """The irreps an irreps-valued parameter holds, where a type names it (``input x : hidden``)."""
    value = env.get(name.id)
    if isinstance(value, Irreps):
        return value
    if value is not None:
        raise FdgTypeError(
            f"parameter '{name.id}' is the number {value!r}, not irreps",
            name.span,
            f"a multiplicity needs an irrep after it: {name.id} x 0e",
        )
    holding = [k for k, v in env.items() if isinstance(v, Irreps)]
    raise FdgTypeError(
        f"'{name.id}' is not an irreps term",
        name.span,
        suggest(name.id, holding)
        or "irreps are written like 16x0e + 8x1o or named by an irreps parameter; after '->', '+' continues the"
        f" irreps: to add a wire, parenthesize: (f(a) -> 0e) + {name.id}",
    )
