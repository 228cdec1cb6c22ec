"""Dependency order of a diagram's statements: which names each expression uses, and a cycle check.

Statements are declarative, so the checker evaluates assignments in the order this module gives:
by dependency, ties broken by source order.  A cycle is a user error at the reference closing it.
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from fdg.errors import FdgTypeError
from fdg.frontend import syntax


def ordered(diagram: syntax.Diagram) -> list[syntax.Assign | syntax.Output]:
    """Assignments (and ``output x = ...``) in dependency order, ties in source order; cycles are errors."""
    stmts = {
        s.name.id: s
        for s in diagram.body
        if isinstance(s, syntax.Assign) or (isinstance(s, syntax.Output) and s.value is not None)
    }
    deps = nx.DiGraph()
    deps.add_nodes_from(stmts)
    for name, stmt in stmts.items():
        assert stmt.value is not None
        for ref in references(stmt.value):
            if ref.id in stmts:
                deps.add_edge(ref.id, name, span=ref.span)
    rank = {name: i for i, name in enumerate(stmts)}
    try:  # O(n log n); find_cycle, which is quadratic on long chains, runs only to report a cycle
        return [stmts[n] for n in nx.lexicographical_topological_sort(deps, key=rank.__getitem__)]
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(deps)
    path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
    u, v = cycle[-1]
    raise FdgTypeError(
        f"cycle: {path}",
        deps.edges[u, v]["span"],
        "a diagram is acyclic: every wire must be computed from inputs without depending on itself",
    )


def references(expr: syntax.Expr) -> Iterator[syntax.Name]:
    """Every name an expression refers to as a value (not function names or option words)."""
    match expr:
        case syntax.Name():
            yield expr
        case syntax.BinOp(left=left, right=right):
            yield from references(left)
            yield from references(right)
        case syntax.Neg(operand=operand):
            yield from references(operand)
        case syntax.Tuple(items=items):
            for item in items:
                yield from references(item)
        case syntax.Index(value=value, index=index):
            yield from references(value)
            yield from references(index)
        case syntax.Call(func=func, args=args, arrow=arrow):
            if not isinstance(func, syntax.Name):
                yield from references(func)
            for arg in args:
                yield from references(arg.value)
            for opt in arrow.options if arrow else ():
                if opt.name not in (
                    "tree",
                    "mode",
                    "unreached",
                    "bias",
                    "blocks",
                ):  # a tree of labels, a word: not values
                    yield from references(opt.value)
            if arrow is not None:
                yield from _target_names(arrow.target)


def _target_names(target: syntax.IrrepsSum | syntax.Lmax) -> Iterator[syntax.Name]:
    """Names used by a call's output type: multiplicities, ``sh(L)`` and ``lmax L`` (numbers assigned in the body)."""
    if isinstance(target, syntax.Lmax):
        yield from references(target.value)
        return
    for term in target.terms:
        if term.mul is not None:
            yield from references(term.mul)
        if isinstance(term.body, syntax.ShIrreps):
            yield from references(term.body.lmax)
        elif isinstance(term.body, syntax.IrrepsSum):
            yield from _target_names(term.body)
