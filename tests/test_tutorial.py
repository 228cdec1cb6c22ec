"""docs/tutorial.md runs as written: its `.fdg` block is saved as conv.fdg, then its Python blocks run in order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from svg_util import svg_texts

import fdg

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", TUTORIAL.read_text(), flags=re.S | re.M)


@pytest.fixture(autouse=True)
def restore_dtype() -> Iterator[None]:
    previous = torch.get_default_dtype()  # the tutorial sets float64
    yield
    torch.set_default_dtype(previous)


def test_tutorial_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (diagram,) = blocks("fdg")
    (tmp_path / "conv.fdg").write_text(diagram)
    monkeypatch.chdir(tmp_path)
    code = blocks("python")
    assert len(code) == 6
    namespace: dict[str, object] = {}
    for i, block in enumerate(code):
        exec(compile(block, f"docs/tutorial.md (python block {i + 1})", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "largest difference: outputs" in printed and "Conv(mul=8, lmax=2, norm=0.25)" in printed
    assert (tmp_path / "conv.svg").read_text().startswith("<?xml")


def test_tutorial_picture_is_the_tutorial_diagram(tmp_path: Path) -> None:
    """docs/tutorial_conv.svg shows the diagram the tutorial writes: the same texts as a fresh drawing of it.

    Regenerate it with: fdg draw conv.fdg -o docs/tutorial_conv.svg (conv.fdg: the tutorial's `.fdg` block).
    """
    (tmp_path / "conv.fdg").write_text(blocks("fdg")[0])
    drawn = fdg.draw(tmp_path / "conv.fdg", output=tmp_path / "conv.svg")
    assert svg_texts(ROOT / "docs" / "tutorial_conv.svg") == svg_texts(drawn)
