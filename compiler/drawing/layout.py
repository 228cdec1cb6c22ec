"""Layered left-to-right layout of a diagram's wires, for ``fdg draw``.

The classic Sugiyama scheme, kept small: vertices go into columns by longest path from the inputs
(outputs all in the last column), a wire that skips columns passes through one *dummy* point per
skipped column (shared by every wire of the same producer, so a fan-out splits late instead of
running in parallel), columns are ordered by barycenter sweeps and then swaps of neighbours, keeping
the order with the fewest crossings, and heights come from repeated order-preserving least-squares
fits of each column to its neighbours' wire heights.  Everything is deterministic: ties fall back to
the order the vertices were created in.

The module knows nothing about drawing: sizes come in as :class:`Slot` values (measured by the
renderer) and the result is plain geometry, in points, with ``y`` growing downwards.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GAP = 12.0  # between two slots of one column
BEND = 44.0  # the horizontal room wires get to bend between two columns
SWEEPS = 6  # of barycenter ordering (and at most as many of swaps), and twice as many of height fitting


@dataclass(frozen=True)
class Dummy:
    """Where the wires of ``source`` cross column ``layer`` without meeting a vertex there."""

    source: str
    layer: int


Key = str | Dummy


@dataclass(frozen=True)
class Slot:
    """The room a vertex takes: its width, its extent above and below its wire's height, its wire's label."""

    width: float
    above: float
    below: float
    label: float = 0.0  # width of the label on the vertex's outgoing wire; 0 when it has none
    exit: float = 0.0  # where its outgoing wire leaves the shape, right of its centre
    ports: tuple[tuple[float, float], ...] = ((0.0, 0.0),)  # (dx, dy) of each operand port from the centre
    flush: bool = False  # against the column's left edge, instead of centred in the width the others share


@dataclass(frozen=True)
class Wire:
    """A drawn wire from ``source`` to operand ``port`` of ``target``."""

    source: str
    target: str
    port: int


@dataclass(frozen=True)
class Layout:
    """Columns left to right (each top to bottom), centres of vertices and dummies, and each column's extent."""

    columns: tuple[tuple[Key, ...], ...]
    x: Mapping[Key, float]  # horizontal centre of a vertex's shape (start of its column for a dummy)
    y: Mapping[Key, float]  # height of the vertex's wire / the dummy's
    column_start: tuple[float, ...]
    column_end: tuple[float, ...]  # where the labelled stubs of the column's outgoing wires end
    width: float
    height: float
    crossings: int  # pairs of wire segments that cross

    def route(self, wire: Wire, slots: Mapping[str, Slot]) -> list[tuple[float, float]]:
        """The points of a wire: horizontal runs inside columns joined by bends between columns.

        Returned as ``[p0, p1, c1, c2, p2, p3, ...]``: a straight run ``p0 -> p1``, then a cubic Bézier bend
        with control points ``c1, c2`` to ``p2``, a straight run ``p2 -> p3``, and so on: 2 + 4k points.
        """
        src, dst = slots[wire.source], slots[wire.target]
        first = self._layer(wire.source)
        last = self._layer(wire.target)
        start = self.y[wire.source]
        points = [(self.x[wire.source] + src.exit, start), (self.column_end[first], start)]
        for layer in range(first + 1, last):
            y = self.y[Dummy(wire.source, layer)]
            points += _bend(points[-1], (self.column_start[layer], y))
            points.append((self.column_end[layer], y))
        dx, dy = dst.ports[wire.port]
        end_y = self.y[wire.target] + dy
        points += _bend(points[-1], (self.column_start[last], end_y))
        points.append((self.x[wire.target] + dx, end_y))
        return points

    def _layer(self, key: str) -> int:
        return next(i for i, column in enumerate(self.columns) if key in column)


def _bend(start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
    middle = (start[0] + end[0]) / 2
    return [(middle, start[1]), (middle, end[1]), end]


def layout(
    order: Sequence[str],
    wires: Sequence[Wire],
    slots: Mapping[str, Slot],
    first: Sequence[str],
    last: Sequence[str],
) -> Layout:
    """Place the vertices ``order`` (a topological order) joined by ``wires``.

    ``first`` go into the first column in the order given (inputs, and the unwired ones under them),
    ``last`` into the last column (outputs).
    """
    layer = _layers(order, wires, first, last)
    depth = max(layer.values(), default=0) + 1
    up, down = _neighbours(wires, layer)
    columns: list[list[Key]] = [list(first), *([] for _ in range(depth - 1))]
    for node in order:
        if node not in first:  # every other vertex is in a later column: see _layers
            columns[layer[node]].append(node)
    for wire in wires:
        for j in range(layer[wire.source] + 1, layer[wire.target]):
            if Dummy(wire.source, j) not in columns[j]:
                columns[j].append(Dummy(wire.source, j))
    columns = _reduce_crossings(columns, up, down)
    heights = {key: _extent(key, slots) for key in itertools.chain.from_iterable(columns)}
    ports = {key: tuple(dy for _, dy in slots[key].ports) if isinstance(key, str) else (0.0,) for key in heights}
    y = _place(columns, up, down, heights, ports)
    for column in columns:  # unwired vertices (index and weights inputs) close up under the ones before them
        for above, key in itertools.pairwise(column):
            if key not in up and key not in down:
                y[key] = y[above] + heights[above][1] + GAP + heights[key][0]

    starts: list[float] = []
    ends: list[float] = []
    x: dict[Key, float] = {}
    left = 0.0
    for column in columns:
        shared = [slots[k] for k in column if isinstance(k, str) and not slots[k].flush]
        flush = [slots[k].width for k in column if isinstance(k, str) and slots[k].flush]
        width = max((s.width for s in shared), default=0.0)
        starts.append(left)
        ends.append(max([left + width + max((s.label for s in shared), default=0.0), *(left + w for w in flush)]))
        for key in column:
            if isinstance(key, Dummy):
                x[key] = left
            else:
                x[key] = left + (slots[key].width if slots[key].flush else width) / 2
        left = ends[-1] + BEND
    top = min((y[k] - heights[k][0] for k in y), default=0.0)
    y = {k: v - top for k, v in y.items()}
    bottom = max((y[k] + heights[k][1] for k in y), default=0.0)
    crossings = _crossings(columns, down)
    return Layout(tuple(map(tuple, columns)), x, y, tuple(starts), tuple(ends), left - BEND, bottom, crossings)


def _layers(order: Sequence[str], wires: Sequence[Wire], first: Sequence[str], last: Sequence[str]) -> dict[str, int]:
    """Column of each vertex: the longest wired path from the first column; ``last`` all in the final column."""
    preds: dict[str, list[str]] = {key: [] for key in order}
    for wire in wires:
        preds[wire.target].append(wire.source)
    layer: dict[str, int] = {}
    for key in order:
        layer[key] = 0 if key in first else 1 + max((layer[p] for p in preds[key]), default=0)
    final = max((layer[k] for k in order if k not in last), default=0) + 1
    for key in last:
        layer[key] = final
    return layer


Links = dict[Key, list[tuple[Key, int]]]


def _neighbours(wires: Sequence[Wire], layer: Mapping[str, int]) -> tuple[Links, Links]:
    """For each key, its neighbours in the previous column (with the port they arrive at) and in the next one."""
    up: Links = {}
    down: Links = {}
    segments: set[tuple[Key, Key, int]] = set()
    for wire in wires:
        chain: list[Key] = [wire.source]
        chain += [Dummy(wire.source, j) for j in range(layer[wire.source] + 1, layer[wire.target])]
        chain.append(wire.target)
        for a, b in itertools.pairwise(chain):
            port = wire.port if b == wire.target else 0
            if (a, b, port) not in segments:
                segments.add((a, b, port))
                down.setdefault(a, []).append((b, port))
                up.setdefault(b, []).append((a, port))
    return up, down


def _reduce_crossings(columns: list[list[Key]], up: Links, down: Links) -> list[list[Key]]:
    """Barycenter sweeps, down then up, then swaps of neighbours; the first column (the inputs) stays as given.

    The order with the fewest crossings seen wins (the first one on ties).
    """
    best = [list(c) for c in columns]
    best_crossings = _crossings(best, down)
    current = [list(c) for c in columns]
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        for i in range(1, len(current)) if downward else range(len(current) - 2, 0, -1):
            current[i] = _by_barycenter(
                current[i], current[i - 1] if downward else current[i + 1], up if downward else down
            )
        crossings = _crossings(current, down)
        if crossings < best_crossings:
            best, best_crossings = [list(c) for c in current], crossings
    return _transpose(best, down, best_crossings)


def _by_barycenter(column: list[Key], ref: list[Key], links: Links) -> list[Key]:
    """``column`` sorted by the mean position of each key's neighbours in ``ref`` (ports as fractions of a place).

    A key without neighbours there keeps its relative place, scaled to ``ref``'s length.
    """
    position = {key: p for p, key in enumerate(ref)}
    scale = len(ref) / max(1, len(column))

    def centre(rank: int, key: Key) -> tuple[float, int]:
        near = [position[k] + port / 8 for k, port in links.get(key, [])]
        return (sum(near) / len(near) if near else rank * scale, rank)

    return [key for _, key in sorted(enumerate(column), key=lambda item: centre(*item))]


def _transpose(columns: list[list[Key]], down: Links, crossings: int) -> list[list[Key]]:
    """Swap neighbours in a column while that removes crossings (what barycenters miss, e.g. around ports)."""
    for _ in range(SWEEPS):
        improved = False
        for column in columns[1:]:
            for j in range(len(column) - 1):
                column[j], column[j + 1] = column[j + 1], column[j]
                trial = _crossings(columns, down)
                if trial < crossings:
                    crossings, improved = trial, True
                else:
                    column[j], column[j + 1] = column[j + 1], column[j]
        if not improved:
            break
    return columns


def _crossings(columns: list[list[Key]], down: Links) -> int:
    """Number of pairs of wire segments that cross between neighbouring columns (ports count as sub-positions)."""
    total = 0
    for left, right in itertools.pairwise(columns):
        position = {key: p for p, key in enumerate(right)}
        segments = [(a, position[b] + port / 8) for a, key in enumerate(left) for b, port in down.get(key, [])]
        total += sum(1 for (a1, b1), (a2, b2) in itertools.combinations(segments, 2) if (a1 - a2) * (b1 - b2) < 0)
    return total


def _extent(key: Key, slots: Mapping[str, Slot]) -> tuple[float, float]:
    if isinstance(key, Dummy):
        return (2.0, 2.0)
    return (slots[key].above, slots[key].below)


def _place(
    columns: list[list[Key]],
    up: Links,
    down: Links,
    heights: Mapping[Key, tuple[float, float]],
    ports: Mapping[Key, tuple[float, ...]],
) -> dict[Key, float]:
    """Heights of the wires: stacked columns, then sweeps pulling each column towards its neighbours' wires."""
    y: dict[Key, float] = {}
    for column in columns:
        _stack(column, heights, y, {k: 0.0 for k in column}, {k: 1.0 for k in column})
    for sweep in range(2 * SWEEPS + 1):
        downward = sweep % 2 == 0
        indices = range(1, len(columns)) if downward else range(len(columns) - 2, -1, -1)
        for i in indices:
            want: dict[Key, float] = {}
            weight: dict[Key, float] = {}
            for key in columns[i]:
                if downward:
                    near = [y[k] - ports[key][port] for k, port in up.get(key, [])]
                else:
                    near = [y[k] + ports[k][port] for k, port in down.get(key, [])]
                want[key] = sum(near) / len(near) if near else y[key]
                weight[key] = float(len(near)) if near else 0.01
            _stack(columns[i], heights, y, want, weight)
    return y


def _stack(
    column: Sequence[Key],
    heights: Mapping[Key, tuple[float, float]],
    y: dict[Key, float],
    want: Mapping[Key, float],
    weight: Mapping[Key, float],
) -> None:
    """Heights closest (weighted least squares) to ``want`` that keep the column's order and its slots apart.

    With ``c`` the running sum of the required distances, ``z = y - c`` must be non-decreasing: an
    isotonic regression, solved exactly by pooling adjacent violators.
    """
    offsets: list[float] = []
    total = 0.0
    for i, key in enumerate(column):
        if i:
            total += heights[column[i - 1]][1] + GAP + heights[key][0]
        offsets.append(total)
    blocks: list[list[float]] = []  # [weighted mean, weight, count]
    for key, offset in zip(column, offsets, strict=True):
        blocks.append([want[key] - offset, weight[key], 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, w, n = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * w) / (prev[1] + w)
            prev[1] += w
            prev[2] += n
    i = 0
    for mean, _, n in blocks:
        for _ in range(int(n)):
            y[column[i]] = mean + offsets[i]
            i += 1
