"""The temporaries of ``forward``: one allocator for every emitter, so no temporary shadows a value or another one."""

from __future__ import annotations

from collections.abc import Callable

from fdg.ir import GENERATED
from fdg.planning.plan import Plan

#: a vertex's allocator: ``temp("w")`` is a fresh local ``{value}_w`` (or ``{value}_w_2`` where that is taken)
Temp = Callable[[str], str]


class Temps:
    """Every local name of one ``forward``: the plan's values, then the temporaries handed out."""

    def __init__(self, plan: Plan) -> None:
        self.taken = set(plan.names.values()) | GENERATED

    def of(self, value: str) -> Temp:
        """The allocator of the vertex computing ``value``."""

        def temp(suffix: str) -> str:
            base = name = f"{value}_{suffix}"
            n = 1
            while name in self.taken:
                n += 1
                name = f"{base}_{n}"
            self.taken.add(name)
            return name

        return temp
