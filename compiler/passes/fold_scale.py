"""Pass ``fold_scale``: merge chains of constant scalings, ``0.5 * (2 * x)`` -> ``1.0 * x``.

Assumes: a valid IR.  Guarantees: no ``scale`` vertex reads another ``scale`` vertex that has no
other consumer.  Numbers are unchanged up to the rounding of the folded factor.
"""

from __future__ import annotations

from fdg import ir


def fold_scale(diagram: ir.Diagram) -> ir.Diagram:
    g = diagram.graph.copy()
    for node in diagram.order():
        op = g.nodes[node]["op"]
        if not isinstance(op, ir.Scale):
            continue
        (src,) = [u for u, _ in g.in_edges(node)]
        inner = g.nodes[src]["op"]
        if isinstance(inner, ir.Scale) and g.out_degree(src) == 1:
            (deeper,) = [u for u, _ in g.in_edges(src)]
            g.nodes[node]["op"] = op = ir.Scale(inner.factor * op.factor, op.span)
            g.remove_node(src)
            g.add_edge(deeper, node, port=0, wire=g.nodes[deeper]["out"])
    if g.number_of_nodes() == diagram.graph.number_of_nodes():
        return diagram
    return ir.Diagram(diagram.name, diagram.params, g)
