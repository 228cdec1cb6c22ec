"""Codegen for ``power``: a ``fdg.runtime.SymmetricPower`` submodule built in ``__init__``, one call in ``forward``.

The evaluation (the kept coupled trees of the minimal basis, ``fdg.runtime.power_program``) lives in the runtime
module: it is the same for every diagram and too long to be worth unrolling into the generated source, while its
constructor line says everything that determines it.  The learned weights stay a parameter of the generated module,
named and laid out like every other vertex's (``[species, numel]`` for ``learned[z]``).
"""

from __future__ import annotations

from fdg import ir
from fdg.codegen.names import Temp
from fdg.planning.plan import Plan
from fdg.planning.power import PowerPlan


def emit_buffers(p: PowerPlan) -> list[str]:
    """The ``__init__`` line building the runtime module (its CG tables are its buffers)."""
    species = "" if p.species is None else f", species={p.species}"
    return [f'self.{p.module} = fdg.runtime.SymmetricPower("{p.irreps_in}", {p.nu}, "{p.irreps_out}"{species})']


def emit_call(plan: Plan, node: str, args: list[str], temp: Temp) -> list[str]:
    """The line of ``forward`` computing a power vertex."""
    op = plan.diagram.op(node)
    assert isinstance(op, ir.Power)
    p = plan.powers[node]
    a = args[0]
    if op.weights.kind == "input":
        call = f"self.{p.module}({a}, {args[1]})  # per-node weights"
    elif op.weights.kind == "per_index":
        call = f"self.{p.module}({a}, self.{plan.parameters[node].name}, {args[1]})  # weights of each {args[1]}"
    else:
        call = f"self.{p.module}({a}, self.{plan.parameters[node].name})"
    return [
        f"# {p.trees} weights per channel: the dimension of the function space (MACE's basis: {p.mace_weights})",
        f"{plan.names[node]} = {call}",
    ]
