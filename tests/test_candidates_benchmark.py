"""benchmarks/candidates.py times what it says: every candidate of every choice, each as a pinned module."""

from __future__ import annotations

import candidates
from calibration import ROOT

import fdg


def test_every_choice_of_a_diagram_is_listed_with_the_plans_pick() -> None:
    found = {(d, v): (pick, cands) for d, v, pick, cands in candidates.choices(ROOT / "diagrams" / "segnn.fdg")}
    assert found[("SEGNNMessage1", "md")] == ("dense", ["dense", "grouped", "grouped+sparse"])
    (pick, cands) = next(iter(candidates.choices(ROOT / "diagrams" / "fusion.fdg")))[2:]
    assert pick == "folded" and "folded" in cands and all(c == "folded" or c.startswith("tree (") for c in cands)


def test_each_candidate_is_timed_as_its_own_pinned_module(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    compiled: list[dict[str, str]] = []
    real = fdg.compile

    def spy(*args, pin=None, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(pin)
        return real(*args, pin=pin, **kwargs)

    monkeypatch.setattr(candidates.fdg, "compile", spy)
    path = ROOT / "diagrams" / "segnn.fdg"
    times = candidates.measure(path, "SEGNNUpdate2", "update", ["dense", "grouped"], repeat=1)
    assert compiled == [{"update": "dense"}, {"update": "grouped"}]
    assert set(times) == {"dense", "grouped"} and all(t > 0 for t in times.values())
