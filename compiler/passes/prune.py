"""Pass ``prune``: remove vertices that no output depends on.

Assumes: a valid IR.  Guarantees: every non-input vertex is an ancestor of an output; inputs are
all kept (they are the module's signature, even when unused).
"""

from __future__ import annotations

import networkx as nx

from fdg import ir


def prune(diagram: ir.Diagram) -> ir.Diagram:
    g = diagram.graph
    outputs = diagram.outputs()
    live = set(outputs).union(*(nx.ancestors(g, n) for n in outputs)).union(diagram.inputs())
    if len(live) == g.number_of_nodes():
        return diagram
    return ir.Diagram(diagram.name, diagram.params, g.subgraph([n for n in g.nodes if n in live]).copy())
