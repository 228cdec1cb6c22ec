"""The layered layout of `fdg draw`, on small graphs whose best layout is known."""

from __future__ import annotations

import itertools
import random

from fdg.drawing.layout import GAP, Dummy, Slot, Wire, _stack, layout

BOX = Slot(width=20, above=10, below=10, label=30, exit=10, ports=((-10, 0),))


def test_barycenter_uncrosses_wires() -> None:
    # a -> d and b -> c, with c created first: the first guess crosses, the layout must not
    wires = [Wire("b", "c", 0), Wire("a", "d", 0)]
    result = layout(["a", "b", "c", "d"], wires, dict.fromkeys("abcd", BOX), first=["a", "b"], last=["c", "d"])
    assert result.columns == (("a", "b"), ("d", "c"))
    assert result.crossings == 0


def test_long_wires_share_waypoints_and_stay_straight() -> None:
    # x feeds f (next column) and both outputs; the wires of x share one waypoint per skipped column
    wires = [Wire("x", "f", 0), Wire("f", "g", 0), Wire("g", "o1", 0), Wire("x", "o2", 0)]
    nodes = ["x", "f", "g", "o1", "o2"]
    result = layout(nodes, wires, dict.fromkeys(nodes, BOX), first=["x"], last=["o1", "o2"])
    assert [len(c) for c in result.columns] == [1, 2, 2, 2]
    assert Dummy("x", 1) in result.columns[1] and Dummy("x", 2) in result.columns[2]
    route = result.route(Wire("f", "g", 0), dict.fromkeys(nodes, BOX))
    assert route[0][1] == route[-1][1]  # a chain of single-operand vertices is one straight line
    assert len(route) == 6 and route[-1][0] == result.x["g"] - 10


def test_ports_set_the_height_of_the_producers() -> None:
    # a and b feed ports 0 and 1 of c, 24 points apart: both wires arrive straight
    wires = [Wire("a", "c", 0), Wire("b", "c", 1)]
    tall = Slot(width=20, above=14, below=14, exit=10, ports=((-10, -12), (-10, 12)))
    small = Slot(width=20, above=4, below=4, label=30, exit=10)  # two of them need 20 points, less than 24
    result = layout(["a", "b", "c"], wires, {"a": small, "b": small, "c": tall}, first=["a", "b"], last=["c"])
    assert abs(result.y["a"] - (result.y["c"] - 12)) < 1e-6
    assert abs(result.y["b"] - (result.y["c"] + 12)) < 1e-6


def test_stack_is_the_closest_separated_placement() -> None:
    rng = random.Random(0)
    for _ in range(200):
        keys = [f"k{i}" for i in range(rng.randint(1, 6))]
        heights = {k: (rng.uniform(1, 10), rng.uniform(1, 10)) for k in keys}
        want = {k: rng.uniform(-30, 30) for k in keys}
        weight = {k: rng.choice([0.01, 1.0, 2.0]) for k in keys}
        y: dict[str | Dummy, float] = {}
        _stack(keys, heights, y, want, weight)
        gaps = [y[b] - y[a] - heights[a][1] - GAP - heights[b][0] for a, b in itertools.pairwise(keys)]
        assert all(g > -1e-9 for g in gaps)  # order kept, slots apart
        cost = sum(weight[k] * (y[k] - want[k]) ** 2 for k in keys)
        # no feasible nudge of a run of touching slots lowers the cost (optimality of the pooled blocks)
        for start in range(len(keys)):
            for end in range(start + 1, len(keys) + 1):
                for step in (-1e-3, 1e-3):
                    moved = dict(y)
                    for k in keys[start:end]:
                        moved[k] += step
                    feasible = all(
                        moved[b] - moved[a] - heights[a][1] - GAP - heights[b][0] > -1e-9
                        for a, b in itertools.pairwise(keys)
                    )
                    if feasible:
                        assert sum(weight[k] * (moved[k] - want[k]) ** 2 for k in keys) >= cost - 1e-9
