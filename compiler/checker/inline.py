"""Diagram calls: ``Other(mul = 8)(a, b)`` lowered by inlining the callee into the caller's graph.

A call names a diagram of the caller's scope (``uses.py``), gives some of its parameters by name,
then its inputs by position.  The call is checked in the caller (parameter names and kinds, the
number and kinds of the inputs), then the callee is lowered on its own with the call's parameter
values, exactly as ``fdg.compile`` would lower it, and its graph is spliced into the caller's:

* the callee's inputs become the arguments: each argument's type must be the input's declared type
  (irreps after parameter substitution, index and weights kinds), and the callee's axes are bound to
  the caller's (``node`` to ``atom``) consistently across all arguments;
* every other vertex is copied under a fresh name prefixed by the caller's variable (``y_agg``), so
  each call site holds its own learned weights (the plan names them after the vertex);
* the callee's output becomes the call's value.  A diagram with several outputs is called with a
  selection by position, ``Block()(x)[1]`` (the grammar has no destructuring assignment).

Errors in the callee's body are located in the callee's file, with a note at the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import networkx as nx

from fdg import ir
from fdg.checker import vertices
from fdg.checker.evaluate import ParamValue, irreps, suggest
from fdg.checker.vertices import Resolve, Value, Wire
from fdg.errors import Diagnostic, FdgError, FdgTypeError
from fdg.frontend import syntax
from fdg.frontend.uses import Library, Scope
from fdg.runtime import Irreps

if TYPE_CHECKING:
    from fdg.checker.lower import Lowered

#: lowers a diagram body with parameter overrides, its own calls made through the given Calls
LowerBody = Callable[[syntax.Diagram, dict[str, ParamValue], "Calls"], "Lowered"]

#: calls nested deeper than this are refused (a model nests a few levels; hundreds would overflow Python's stack)
MAX_CALL_DEPTH = 50
#: the most vertices a diagram may grow to by inlining its calls (each call copies its callee)
MAX_VERTICES = 20000


class Host(Protocol):
    """What inlining needs of the diagram being lowered (``lower._Lowering``)."""

    graph: nx.MultiDiGraph
    rank: dict[str, int]  # creation order of the nodes
    defined: dict[str, syntax.Name]  # every name the diagram defines
    anonymous: set[str]  # nodes an assignment may rename
    warnings: list[Diagnostic]
    statement: str  # the name assigned by the statement being evaluated
    env: dict[str, ParamValue]  # the diagram's parameters


class Calls:
    """The diagram calls one diagram may make: its file's scope, and the diagrams being lowered around it."""

    def __init__(
        self,
        library: Library,
        scope: Scope,
        stack: tuple[syntax.Diagram, ...],
        lower: LowerBody,
        lowered: dict[tuple[int, tuple[tuple[str, str, ParamValue], ...]], Lowered] | None = None,
    ) -> None:
        self.library = library
        self.scope = scope
        self.stack = stack  # the caller last; a callee on it is a recursive call
        self.lower = lower
        # each callee lowered once per parameter values, shared by every call under one root: a diagram calling
        # another twice per level costs one lowering per level, not 2^depth
        self.lowered = {} if lowered is None else lowered

    def several_outputs(self, call: syntax.Call) -> bool:
        """Whether ``call`` is ``D(...)(...)`` of a known diagram with several outputs (then ``[k]`` selects one)."""
        head = call.func
        if not isinstance(head, syntax.Call) or not isinstance(head.func, syntax.Name):
            return False
        found = self.scope.get(head.func.id)
        return found is not None and sum(isinstance(s, syntax.Output) for s in found.diagram.body) > 1

    def reject_single_call(self, name: syntax.Name, call: syntax.Call) -> None:
        """``Mix(h)`` names a diagram but calls it once: say how a diagram is called."""
        found = self.scope.get(name.id)
        if found is not None:
            raise FdgTypeError(
                f"{name.id} is a diagram: call it with its parameters, then its inputs",
                call.span,
                f"usage: {_usage(found.diagram)}",
            )

    def call(self, call: syntax.Call, select: syntax.Expr | None, resolve: Resolve, host: Host) -> Wire:
        """Inline ``call`` (whose ``func`` is a call) into ``host``; ``select`` is the ``[k]`` after it, if any."""
        callee, overrides = self._head(call, resolve, host.env)
        inputs = [s for s in callee.body if isinstance(s, syntax.Input)]
        args = _arguments(call, callee, inputs, resolve)
        if len(self.stack) >= MAX_CALL_DEPTH:
            raise FdgTypeError(
                f"diagram calls nested more than {MAX_CALL_DEPTH} deep", call.span, "flatten the chain of calls"
            )
        key = (id(callee), tuple(sorted((k, type(v).__name__, v) for k, v in overrides.items())))
        stack = (*self.stack, callee)
        child = Calls(self.library, self.library.scope(callee.span.source), stack, self.lower, self.lowered)
        try:
            if key not in self.lowered:
                self.lowered[key] = self.lower(callee, overrides, child)
            lowered = self.lowered[key]
        except FdgError as error:
            given = ir.format_params(overrides.items())
            where = f"in {callee.name.id} with {given}" if given else f"in {callee.name.id}"
            raise error.noted(f"{where}, called here", call.span) from None
        body = lowered.diagram
        axes = _bind(callee, body, inputs, args)
        outputs = body.outputs()
        chosen = _select(callee, call, outputs, select, resolve)
        seen = {w.format() for w in host.warnings}
        for warning in lowered.warnings:
            note = Diagnostic("note", f"in {callee.name.id}, called here", call.span)
            noted = dataclasses.replace(warning, notes=(*warning.notes, note))
            if noted.format() not in seen:  # a callee called twice warns once
                host.warnings.append(noted)
                seen.add(noted.format())
        if host.graph.number_of_nodes() + body.graph.number_of_nodes() > MAX_VERTICES:
            raise FdgTypeError(
                f"inlining this call grows the diagram past {MAX_VERTICES} vertices",
                call.span,
                "every call copies its callee's vertices: a diagram calling another twice per level doubles per level",
            )
        return _splice(host, body, {i.name.id: arg for i, (arg, _) in zip(inputs, args, strict=True)}, axes, chosen)

    def _head(
        self, call: syntax.Call, resolve: Resolve, env: Mapping[str, ParamValue]
    ) -> tuple[syntax.Diagram, dict[str, ParamValue]]:
        """The callee of ``D(p = v, ...)(...)`` and its parameter overrides, evaluated in the caller."""
        head = call.func
        if not isinstance(head, syntax.Call) or not isinstance(head.func, syntax.Name):
            raise FdgTypeError(
                "only a diagram can be called with inputs", head.span, "call a diagram as Name(parameters)(inputs)"
            )
        name = head.func
        found = self.scope.get(name.id)
        if found is None:
            raise FdgTypeError(f"unknown diagram '{name.id}'", name.span, self._unknown_hint(name.id))
        callee = found.diagram
        if any(d is callee for d in self.stack):
            start = next(i for i, d in enumerate(self.stack) if d is callee)
            chain = " -> ".join(d.name.id for d in self.stack[start:])
            raise FdgTypeError(
                f"recursive call: {chain} -> {name.id}",
                name.span,
                "a diagram is a finite network: it cannot contain itself",
            )
        for piece in (head.arrow, call.arrow):
            if piece is not None:
                raise FdgTypeError(
                    "a diagram call takes no output type: the diagram declares its outputs",
                    piece.span,
                    f"usage: {_usage(callee)}",
                )
        params = [p.name.id for p in callee.params]
        listing = f"{name.id}'s parameters: {', '.join(params) or 'none'}"
        overrides: dict[str, ParamValue] = {}
        for arg in head.args:
            if arg.name is None:
                raise FdgTypeError(f"parameters of {name.id} are given by name", arg.span, f"usage: {_usage(callee)}")
            if arg.name not in params:
                raise FdgTypeError(
                    f"diagram {name.id} has no parameter '{arg.name}'",
                    arg.span,
                    " ".join(filter(None, [suggest(arg.name, params), listing])),
                )
            given = _irreps_argument(arg.value, env)
            if given is not None:
                overrides[arg.name] = given
                continue
            value = resolve(arg.value)
            if isinstance(value, Wire):
                raise FdgTypeError(
                    f"parameter '{arg.name}' of {name.id} must be a number, but this is a wire ({_kind(value.type)})",
                    arg.value.span,
                    listing,
                )
            overrides[arg.name] = value
        return callee, overrides

    def _unknown_hint(self, name: str) -> str:
        if name in vertices.SIGNATURES:
            return f"{name} is a built-in function: {vertices.USAGE[name]}"
        known = sorted(self.scope)
        if not known:
            return "define it in this file, or `use` the file that holds it"
        return suggest(name, known) or f"diagrams callable here: {', '.join(known)}"


def _irreps_argument(value: syntax.Expr, env: Mapping[str, ParamValue]) -> Irreps | None:
    """The irreps a diagram call's keyword argument gives (``hidden = 16x0e + 16x1o``, or the caller's own irreps
    parameter ``hidden``), or None for a number."""
    if isinstance(value, syntax.Name) and isinstance(env.get(value.id), Irreps):
        value = syntax.IrrepsSum((syntax.IrrepsTerm(None, value, value.span),), value.span)
    return irreps(value, env) if isinstance(value, syntax.IrrepsSum) else None


def _usage(callee: syntax.Diagram) -> str:
    params = ", ".join(f"{p.name.id} = ..." for p in callee.params)
    inputs = ", ".join(s.name.id for s in callee.body if isinstance(s, syntax.Input))
    return f"{callee.name.id}({params})({inputs})"


def _kind(wire: ir.WireType) -> str:
    """A wire type as the user declares it (the numel of external weights is not theirs to write)."""
    return f"weights over {wire.axis}" if isinstance(wire, ir.WeightsWire) else str(wire)


def _arguments(
    call: syntax.Call, callee: syntax.Diagram, inputs: list[syntax.Input], resolve: Resolve
) -> list[tuple[Wire, syntax.Arg]]:
    """The inputs of a call, positional, one per declared input, each a wire."""
    name = callee.name.id
    for arg in call.args:
        if arg.name is not None:
            raise FdgTypeError(
                f"inputs of {name} are given by position, in declaration order", arg.span, f"usage: {_usage(callee)}"
            )
    if len(call.args) != len(inputs):
        where = call.args[len(inputs)].span if len(call.args) > len(inputs) else call.span
        raise FdgTypeError(
            f"{name} takes {len(inputs)} input{'s' * (len(inputs) != 1)}, got {len(call.args)}",
            where,
            f"usage: {_usage(callee)}",
        )
    result = []
    for decl, arg in zip(inputs, call.args, strict=True):
        value: Value = resolve(arg.value)
        if not isinstance(value, Wire):
            raise FdgTypeError(
                f"input {decl.name.id} of {name} takes a wire, but this is the number {value!r}",
                arg.span,
                f"usage: {_usage(callee)}",
            )
        result.append((value, arg))
    return result


def _bind(
    callee: syntax.Diagram, body: ir.Diagram, inputs: list[syntax.Input], args: list[tuple[Wire, syntax.Arg]]
) -> dict[ir.Axis, ir.Axis]:
    """Check each argument against its input's type and bind the callee's axes to the caller's."""
    axes: dict[ir.Axis, ir.Axis] = {}
    bound_by: dict[ir.Axis, int] = {}
    params = body.params_text
    instantiated = f"{callee.name.id} is instantiated with {params}" if params else None

    def fail(decl: syntax.Input, arg: syntax.Arg, message: str, hint: str | None) -> FdgTypeError:
        error = FdgTypeError(message, arg.span, hint)
        return error.noted(f"input {decl.name.id} of {callee.name.id} is declared here", decl.span)

    for position, (decl, (wire, arg)) in enumerate(zip(inputs, args, strict=True), 1):
        declared = body.out(decl.name.id)
        given = wire.type
        head = f"input {decl.name.id} of {callee.name.id} takes {_kind(declared)}, but this argument is {_kind(given)}"
        if type(given) is not type(declared):
            raise fail(decl, arg, head, None)
        if isinstance(declared, ir.Feature) and isinstance(given, ir.Feature) and declared.irreps != given.irreps:
            raise fail(decl, arg, head, instantiated)
        pairs = [(declared.axis, given.axis)]
        if isinstance(declared, ir.IndexWire) and isinstance(given, ir.IndexWire):
            pairs.append((declared.target, given.target))
        for mine, theirs in pairs:
            if mine.size is not None and mine.size != theirs.size:
                raise fail(decl, arg, head, instantiated)
            if mine in axes and axes[mine] != theirs:
                raise fail(
                    decl,
                    arg,
                    f"axis '{mine}' of {callee.name.id} is '{axes[mine]}' in argument {bound_by[mine]} "
                    f"but '{theirs}' in this argument",
                    f"the inputs of {callee.name.id} over '{mine}' must all be over one axis of the caller",
                )
            axes[mine] = theirs
            bound_by.setdefault(mine, position)
    return axes


def _select(
    callee: syntax.Diagram, call: syntax.Call, outputs: list[str], select: syntax.Expr | None, resolve: Resolve
) -> str:
    """The output node the call's value is: the only one, or the one ``[k]`` selects."""
    if select is None and len(outputs) == 1:
        return outputs[0]
    names = ", ".join(f"[{k}] {node.removeprefix('out:')}" for k, node in enumerate(outputs))
    hint = f"select one by position: {names}; each call is its own instance, with its own weights"
    if select is None:
        raise FdgTypeError(f"{callee.name.id} has {len(outputs)} outputs", call.span, hint)
    k = resolve(select)
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(outputs):
        shown = "a wire" if isinstance(k, Wire) else repr(k)
        raise FdgTypeError(f"{callee.name.id} has no output [{shown}]", select.span, hint)
    return outputs[k]


def _splice(host: Host, body: ir.Diagram, args: dict[str, Wire], axes: dict[ir.Axis, ir.Axis], chosen: str) -> Wire:
    """Copy ``body``'s vertices into ``host`` under fresh names, wired to ``args``; the value of output ``chosen``."""
    g = body.graph
    inner = [n for n, op in g.nodes(data="op") if not isinstance(op, ir.Input | ir.Output)]
    prefix = _prefix(host, inner)
    names = {node: wire.node for node, wire in args.items()} | {n: f"{prefix}_{n}" for n in inner}
    for node in inner:
        data = g.nodes[node]
        host.rank[names[node]] = len(host.rank)
        host.graph.add_node(names[node], op=_rebind(data["op"], names), out=_retype(data["out"], axes))
    for u, v, data in g.edges(data=True):
        if v in inner:
            host.graph.add_edge(names[u], names[v], port=data["port"], wire=host.graph.nodes[names[u]]["out"])
    (producer,) = body.operands(chosen)
    if producer in inner:
        host.anonymous.add(names[producer])  # an assignment of the call's value renames it
    return Wire(names[producer], host.graph.nodes[names[producer]]["out"])


def _prefix(host: Host, inner: list[str]) -> str:
    """The caller's variable, numbered on a clash (``y``, ``y2``, ...), so that ``{prefix}_{node}`` names are new."""
    taken = set(host.graph) | set(host.defined) | host.anonymous
    prefix, n = host.statement, 1
    while any(f"{prefix}_{node}" in taken for node in inner):
        n += 1
        prefix = f"{host.statement}{n}"
    return prefix


def _retype(wire: ir.WireType, axes: dict[ir.Axis, ir.Axis]) -> ir.WireType:
    match wire:
        case ir.Feature(axis=axis, irreps=irreps):
            return ir.Feature(axes[axis], irreps)
        case ir.IndexWire(axis=axis, target=target):
            return ir.IndexWire(axes[axis], axes[target])
        case ir.WeightsWire(axis=axis, numel=numel):
            return ir.WeightsWire(axes[axis], numel)
    raise AssertionError(f"unknown wire {wire!r}")


def _rebind(op: ir.Vertex, names: dict[str, str]) -> ir.Vertex:
    """A vertex whose weights name a callee input (``weights = R``, ``learned[z]``) names the argument instead."""
    if isinstance(op, ir.Couple | ir.Linear | ir.Fuse | ir.Power) and op.weights.source is not None:
        return dataclasses.replace(op, weights=dataclasses.replace(op.weights, source=names[op.weights.source]))
    return op


__all__ = ["Calls", "Host", "LowerBody"]
