"""The checker: gives a syntax tree meaning and lowers one diagram of it to the IR.

It resolves parameters (defaults, then overrides), declares inputs, orders the assignments by
their dependencies (reporting cycles), evaluates every expression to a number or a wire, types
each vertex by the rules of ``vertices.py`` and builds the :class:`~fdg.ir.Diagram`.  The first
error raises :class:`~fdg.errors.FdgTypeError` at its span; warnings (unused inputs, unused
assignments, output irreps no path reaches) are collected and returned.  A call of another
diagram, ``Other(mul = 8)(a, b)``, is handed to ``inline.py``, which splices the callee in.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from fdg import ir
from fdg.checker import couple, inline, manybody, structure, vertices
from fdg.checker.activations import FUNCTIONS as ACTIVATIONS
from fdg.checker.evaluate import (
    CONSTANTS,
    FUNCTIONS,
    MAX_MUL,
    Number,
    ParamValue,
    binary,
    bind_parameters,
    function,
    integer,
    irreps,
    number,
    positional,
    suggest,
)
from fdg.checker.order import ordered, references
from fdg.checker.vertices import Made, Value, Wire
from fdg.errors import Diagnostic, FdgArgumentError, FdgTypeError
from fdg.frontend import syntax, uses
from fdg.ir import GENERATED

#: the names the language gives meaning to, which no value may take (the grammar's own words are syntax.KEYWORDS)
BUILTINS = frozenset({*vertices.SIGNATURES, *CONSTANTS, "learned", "none"})


@dataclass(frozen=True)
class Lowered:
    diagram: ir.Diagram
    warnings: tuple[Diagnostic, ...]


def select(program: syntax.Program, name: str | None) -> syntax.Diagram:
    """The diagram called ``name``, or the only one when ``name`` is None."""
    names = program.names
    if name is None:
        if len(names) == 1:
            return program.diagrams[0]
        if not names:
            raise FdgArgumentError(f"{program.span.source.name} holds no diagram")
        raise FdgArgumentError(f"{program.span.source.name} holds several diagrams; choose one of: {', '.join(names)}")
    for d in program.diagrams:
        if d.name.id == name:
            return d
    raise FdgArgumentError(
        f"no diagram '{name}' in {program.span.source.name}; it holds: {', '.join(names)}", hint=suggest(name, names)
    )


def lower(
    program: syntax.Program,
    name: str | None = None,
    params: Mapping[str, object] | None = None,
    library: uses.Library | None = None,
) -> Lowered:
    """Check one diagram of a program with the given parameter overrides and lower it to the IR.

    ``library`` is what ``uses.load(program)`` returns, for a caller that loaded it already;
    without it the files ``program`` uses are read now.
    """
    library = library if library is not None else uses.load(program)
    diagram = select(program, name)
    scope = library.scope(program.span.source)
    return _lower(diagram, dict(params or {}), inline.Calls(library, scope, (diagram,), _lower))


def _python_name(name: syntax.Name, what: str, why: str) -> None:
    """Refuse a name the generated Python cannot take: a keyword, or a name it uses itself."""
    if keyword.iskeyword(name.id) or name.id in GENERATED:
        reason = "is a Python keyword" if keyword.iskeyword(name.id) else "is a name the generated module uses itself"
        raise FdgTypeError(
            f"'{name.id}' cannot name {what}: it {reason}", name.span, f"{why}; rename it, e.g. '{name.id}_'"
        )


def _lower(diagram: syntax.Diagram, overrides: Mapping[str, object], calls: inline.Calls) -> Lowered:
    return _Lowering(diagram, overrides, calls).run()


class _Lowering:
    def __init__(self, diagram: syntax.Diagram, overrides: Mapping[str, object], calls: inline.Calls) -> None:
        self.syntax = diagram
        self.calls = calls
        self.statement = ""  # the name the statement being evaluated assigns (prefixes inlined vertices)
        self.made: dict[str, int] = {}  # statement -> its unnamed vertices so far
        self.graph = nx.MultiDiGraph()
        self.env: dict[str, ParamValue] = {}
        self.values: dict[str, Value] = {}
        self.warnings: list[Diagnostic] = []
        self.defined: dict[str, syntax.Name] = {}
        self.anonymous: set[str] = set()
        self.rank: dict[str, int] = {}  # creation order, kept through renames
        self.env.update(bind_parameters(diagram, overrides, BUILTINS))

    # ------------------------------------------------------------ declarations

    def _declare(self, name: syntax.Name, where: dict[str, syntax.Name]) -> None:
        if name.id in self.env:
            raise FdgTypeError(f"'{name.id}' is already a parameter of {self.syntax.name.id}", name.span)
        if name.id in BUILTINS:
            raise FdgTypeError(f"'{name.id}' is a built-in name and cannot be redefined", name.span)
        if name.id in where:
            first = where[name.id].span
            raise FdgTypeError(f"'{name.id}' is already defined at line {first.line}", name.span)
        where[name.id] = name

    def _axis(self, name: syntax.Name | None) -> ir.Axis:
        if name is None:
            return ir.Axis("batch")
        if name.id in self.env:
            raise FdgTypeError(f"'{name.id}' is a parameter, not an axis", name.span)
        return ir.Axis(name.id)

    def _input(self, stmt: syntax.Input) -> None:
        kind = stmt.type
        if isinstance(kind, syntax.IndexType):
            if stmt.axis is not None:
                raise FdgTypeError("an index input names its axis in its type: `index edge -> node`", stmt.axis.span)
            target = kind.target
            if isinstance(target, syntax.Number) or target.id in self.env:
                size = integer(target, self.env, "the range of an index", 1, MAX_MUL)
                out: ir.WireType = ir.IndexWire(self._axis(kind.axis), ir.Axis(_axis_name(target), size))
            else:
                out = ir.IndexWire(self._axis(kind.axis), ir.Axis(target.id))
        elif isinstance(kind, syntax.WeightsType):
            out = ir.WeightsWire(self._axis(stmt.axis), 0)  # numel is fixed by the consumer, see _weights_numel
        else:
            out = ir.Feature(self._axis(stmt.axis), irreps(kind.irreps, self.env))
        node = stmt.name.id
        _python_name(stmt.name, "an input", "inputs become arguments of the compiled module's forward()")
        self.graph.add_node(node, op=ir.Input(node, stmt.span), out=out)
        self.rank[node] = len(self.rank)
        self.values[node] = Wire(node, out)

    # ------------------------------------------------------------ the driver

    def run(self) -> Lowered:
        _python_name(self.syntax.name, "a diagram", "a diagram compiles to a Python class of its name")
        body = self.syntax.body
        for stmt in body:
            if isinstance(stmt, syntax.Input | syntax.Assign) or (isinstance(stmt, syntax.Output) and stmt.value):
                self._declare(stmt.name, self.defined)
        for stmt in body:
            if isinstance(stmt, syntax.Input):
                self._input(stmt)
        for stmt in ordered(self.syntax):
            assert stmt.value is not None
            self.statement = stmt.name.id
            value = self._eval(stmt.value)
            if isinstance(value, Wire) and value.node in self.anonymous:
                value = self._rename(value, stmt.name.id)
            self.values[stmt.name.id] = value
        outputs: set[str] = set()
        for stmt in body:
            if isinstance(stmt, syntax.Output):
                self._output(stmt, outputs)
        if not outputs:
            raise FdgTypeError(
                f"diagram {self.syntax.name.id} has no output", self.syntax.name.span, "add `output name = expression`"
            )
        self._weights_numel()
        self._check_sizes()
        self._warn_unused()
        # rebuild so that node order is creation order (renaming moved named vertices to the end)
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(sorted(self.graph.nodes(data=True), key=lambda item: self.rank[item[0]]))
        graph.add_edges_from(
            sorted(self.graph.edges(keys=True, data=True), key=lambda e: (self.rank[e[1]], e[3]["port"]))
        )
        params = tuple(self.env.items())
        found = sorted(self.warnings, key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
        return Lowered(ir.Diagram(self.syntax.name.id, params, graph), tuple(found))

    def _output(self, stmt: syntax.Output, seen: set[str]) -> None:
        name = stmt.name.id
        if name in seen:
            raise FdgTypeError(f"output '{name}' is declared twice", stmt.name.span)
        seen.add(name)
        if name not in self.values:
            raise FdgTypeError(f"unknown name '{name}'", stmt.name.span, suggest(name, list(self.values)))
        value = self.values[name]
        if not isinstance(value, Wire) or not isinstance(value.type, ir.Feature):
            raise FdgTypeError(
                f"output '{name}' must be a wire of irreps features, but it is {vertices.what_is(value)}",
                stmt.name.span,
            )
        node = f"out:{name}"
        self.graph.add_node(node, op=ir.Output(name, stmt.span), out=None)
        self.rank[node] = len(self.rank)
        self.graph.add_edge(value.node, node, port=0, wire=value.type)

    # ------------------------------------------------------------ expressions

    def _fresh(self) -> str:
        """An id for an unnamed vertex, after the statement it belongs to: ``_h2_1``, ``_h2_2`` ... in the order the
        statement's expression makes them, so that no other statement's vertices change it (and the names of the
        module's weights, ``h2_1_weight``, stay put when a statement is added or removed elsewhere)."""
        count = self.made.get(self.statement, 0)
        while True:
            count += 1
            node = f"_{self.statement}_{count}" if self.statement else f"_{count}"
            if node not in self.defined and node not in self.anonymous and node not in self.graph:
                break
        self.made[self.statement] = count
        return node

    def _add(self, made: Made) -> Wire:
        node = self._fresh()
        self.anonymous.add(node)
        self.rank[node] = len(self.rank)
        self.graph.add_node(node, op=made.op, out=made.out)
        for port, operand in enumerate(made.operands):
            self.graph.add_edge(operand.node, node, port=port, wire=operand.type)
        return Wire(node, made.out)

    def _rename(self, value: Wire, name: str) -> Wire:
        """Give the vertex computing an assignment the assigned name (readable IR dumps and generated code)."""
        nx.relabel_nodes(self.graph, {value.node: name}, copy=False)
        self.anonymous.discard(value.node)
        self.rank[name] = self.rank.pop(value.node)
        return Wire(name, value.type)

    def _eval(self, expr: syntax.Expr) -> Value:
        match expr:
            case syntax.Number(value=value):
                return value
            case syntax.Name(id=name, span=span):
                if name in self.env:
                    return number(expr, self.env)  # a number, or a message if the parameter holds irreps
                if name in self.values:
                    return self.values[name]
                if name in CONSTANTS:
                    return CONSTANTS[name]
                if name in vertices.SIGNATURES:
                    raise FdgTypeError(f"'{name}' is a function; call it: {vertices.USAGE[name]}", span)
                hint = (
                    suggest(name, [*self.env, *self.values])
                    or f"declare `input {name} : ...`, or assign `{name} = ...`"
                )
                raise FdgTypeError(f"unknown name '{name}'", span, hint)
            case syntax.Neg(operand=operand, span=span):
                value = self._eval(operand)
                return -value if not isinstance(value, Wire) else self._scale(value, -1.0, span)
            case syntax.BinOp():
                return self._binop(expr)
            case syntax.Tuple(span=span):
                raise FdgTypeError("a tuple is only meaningful as a fuse tree: tree = ((a, b), c)", span)
            case syntax.Index(value=syntax.Name(id="learned"), span=span):
                raise FdgTypeError("learned[...] is only meaningful as an option: weights = learned[z]", span)
            case syntax.Index(value=syntax.Call() as call) if self.calls.several_outputs(call):
                return self.calls.call(call, expr.index, self._eval, self)  # Block()(x)[1]
            case syntax.Index():
                return self._add(vertices.gather(expr, self._eval))
            case syntax.Call():
                return self._call(expr)
            case syntax.IrrepsSum(span=span):
                raise FdgTypeError(
                    "irreps are not a value here",
                    span,
                    "irreps stand in types (`input x : 16x0e`, `-> 16x0e`) and as the value of an irreps parameter",
                )
        raise AssertionError(f"unhandled syntax {expr!r}")

    def _constants(self) -> dict[str, ParamValue]:
        """Parameters and the numbers assigned so far: what output types may use."""
        return {**self.env, **{k: v for k, v in self.values.items() if not isinstance(v, Wire)}}

    def _scale(self, wire: Wire, factor: float, span: syntax.Span) -> Wire:
        vertices.feature(wire, span, "a scaled value")
        return self._add(Made(ir.Scale(float(factor), span), wire.type, (wire,)))

    def _binop(self, expr: syntax.BinOp) -> Value:
        left, right = self._eval(expr.left), self._eval(expr.right)
        if not isinstance(left, Wire) and not isinstance(right, Wire):
            return binary(expr.op, left, right, expr.span)
        if expr.op in ("+", "-"):
            if not (isinstance(left, Wire) and isinstance(right, Wire)):
                raise FdgTypeError(
                    f"cannot {'add' if expr.op == '+' else 'subtract'} a number and a wire",
                    expr.span,
                    "wires are added to wires of the same irreps; scale with c * x",
                )
            a = vertices.feature(left, expr.left.span, "a summand")
            b = vertices.feature(right, expr.right.span, "a summand")
            if a.type != b.type:
                raise FdgTypeError(
                    f"cannot add {a.type} and {b.type}", expr.span, "both sides of + must have the same irreps and axis"
                )
            if expr.op == "-":
                b = self._scale(b, -1.0, expr.right.span)
            return self._add(Made(ir.Add(expr.span), a.type, (a, b)))
        if expr.op == "*" and isinstance(left, Wire) and isinstance(right, Wire):
            raise FdgTypeError(
                "cannot multiply two wires", expr.span, "their tensor product is a vertex: couple(a, b) -> IRREPS"
            )
        if expr.op == "*":
            wire, factor = (left, right) if isinstance(left, Wire) else (right, left)
            assert isinstance(wire, Wire) and not isinstance(factor, Wire)
            return self._scale(wire, factor, expr.span)
        if expr.op == "/" and isinstance(left, Wire) and not isinstance(right, Wire):
            if right == 0:
                raise FdgTypeError("division by zero", expr.right.span)
            return self._scale(left, 1.0 / right, expr.span)
        raise FdgTypeError(
            f"'{expr.op}' cannot be applied to a wire here",
            expr.span,
            "wires support +, -, scaling by a number (c * x, x / c)",
        )

    def _function(self, name: str, expr: syntax.Call) -> Number:
        """A function of numbers (``sqrt(5 / 6)``): its arguments must not be wires."""
        args = []
        for arg in expr.args:
            value = self._eval(positional(arg, name))
            if isinstance(value, Wire):
                raise FdgTypeError(
                    f"{name} takes numbers, not a wire",
                    arg.span,
                    "functions of numbers compute constants: c * x scales",
                )
            args.append(value)
        return function(name, args, expr.span)

    def _call(self, expr: syntax.Call) -> Value:
        func = expr.func
        if not isinstance(func, syntax.Name):
            return self.calls.call(expr, None, self._eval, self)  # Other(mul = 8)(a, b), inline.py
        if func.id in FUNCTIONS and func.id not in vertices.SIGNATURES and expr.arrow is None:
            return self._function(func.id, expr)
        if func.id not in vertices.SIGNATURES:
            self.calls.reject_single_call(func, expr)
            raise FdgTypeError(
                f"unknown function '{func.id}'",
                func.span,
                suggest(func.id, list(vertices.SIGNATURES)) or f"functions: {', '.join(vertices.SIGNATURES)}",
            )
        call = vertices.split_call(func.id, expr)
        if call.name == "couple":
            made = couple.couple(call, self._eval, self._constants(), self.warnings)
        elif call.name == "linear":
            made = vertices.linear(call, self._eval, self._constants(), self.warnings)
        elif call.name == "sh":
            made = vertices.spherical_harmonics(call, self._eval, self._constants())
        elif call.name == "sum":
            made = vertices.scatter_sum(call, self._eval)
        elif call.name == "sort":
            made = structure.sort(call, self._eval)
        elif call.name == "cat":
            made = structure.cat(call, self._eval)
        elif call.name == "select":
            made = structure.select(call, self._eval, self._constants())
        elif call.name == "channels":
            made = structure.channels(call, self._eval, self._constants())
        elif call.name in ("length", "bessel", "cutoff"):
            made = structure.radial(call, self._eval, self._constants())
        elif call.name == "gate":
            made = structure.gate(call, self._eval)
        elif call.name == "norm_activation":
            made = structure.norm_activation(call, self._eval)
        elif call.name in ACTIVATIONS:
            made = structure.activation(call, self._eval)
        elif call.name == "fuse":
            made = manybody.fuse(call, self._eval, self._constants(), self.warnings)
        else:
            made = manybody.power(call, self._eval, self._constants())
        return self._add(made)

    # ------------------------------------------------------------ whole-diagram checks

    def _weights_numel(self) -> None:
        """Fix each external weights input's numel from the vertices that read it (they must agree)."""
        for node, op in list(self.graph.nodes(data="op")):
            if not isinstance(op, ir.Input) or not isinstance(self.graph.nodes[node]["out"], ir.WeightsWire):
                continue
            wire: ir.WeightsWire = self.graph.nodes[node]["out"]
            users = [(v, self.graph.nodes[v]["op"]) for _, v in self.graph.out_edges(node)]
            numels = {u.weights.numel for _, u in users if isinstance(u, ir.Couple | ir.Fuse | ir.Power)}
            if len(numels) > 1:
                raise FdgTypeError(
                    f"weights {node} are read by vertices that need {sorted(numels)} weights",
                    op.span,
                    "declare one weights input per vertex",
                )
            typed = ir.WeightsWire(wire.axis, numels.pop() if numels else 0)
            self.graph.nodes[node]["out"] = typed
            for u, v, k in list(self.graph.out_edges(node, keys=True)):
                self.graph.edges[u, v, k]["wire"] = typed

    def _check_sizes(self) -> None:
        """A scatter-sum needs the size of its target axis: a fixed range, or an input over that axis."""
        known = {data["out"].axis for _, data in self.graph.nodes(data=True) if isinstance(data["op"], ir.Input)}
        for node, op in self.graph.nodes(data="op"):
            if isinstance(op, ir.ScatterSum):
                axis = self.graph.nodes[node]["out"].axis
                if axis.size is None and axis not in known:
                    raise FdgTypeError(
                        f"sum needs the size of axis '{axis}', but no input is over {axis}",
                        op.span,
                        f"declare an input over {axis}, or give the index a fixed range",
                    )

    def _warn_unused(self) -> None:
        outputs = [n for n, op in self.graph.nodes(data="op") if isinstance(op, ir.Output)]
        used = set(outputs).union(*(nx.ancestors(self.graph, n) for n in outputs))
        # a number (`s = 2 * mul`) is no vertex of the graph: it is used when some expression names it
        named = {
            ref.id
            for stmt in self.syntax.body
            if isinstance(stmt, syntax.Assign | syntax.Output) and stmt.value
            for ref in references(stmt.value)
        }
        for stmt in self.syntax.body:
            if isinstance(stmt, syntax.Input | syntax.Assign) and stmt.name.id not in used:
                value = self.values.get(stmt.name.id)
                if isinstance(value, Wire) and value.node in used:
                    continue
                if not isinstance(value, Wire) and stmt.name.id in named:
                    continue
                kind = "input" if isinstance(stmt, syntax.Input) else "value"
                self.warnings.append(
                    Diagnostic("warning", f"{kind} '{stmt.name.id}' is never used by an output", stmt.name.span)
                )


def _axis_name(target: syntax.Name | syntax.Number) -> str:
    return target.id if isinstance(target, syntax.Name) else str(target.value)
