"""The checker's catalog of invalid programs, and its warnings, as golden files.

``errors/check/NAME.fdg`` is a small realistic diagram with one mistake; ``NAME.expected`` is the
diagnostic fdg reports (``str`` of the raised :class:`FdgError`).
``errors/use/NAME.fdg`` are the same for programs that ``use`` other files, which live in
``errors/use/lib/`` (some broken on purpose).  ``errors/warnings/NAME.fdg`` compile, and
``NAME.expected`` holds the warnings ``fdg.check`` returns.  Paths in the diagnostics are relative
to the repository root, where these tests run.
``FDG_UPDATE_GOLDEN=1`` rewrites the golden files.
"""

from __future__ import annotations

import keyword
from pathlib import Path

import pytest
import torch
from golden_util import check_golden

import fdg
from fdg.cli import main
from fdg.errors import FdgError
from fdg.ir import GENERATED

ROOT = Path(__file__).parents[2]
ERRORS = Path("tests/errors/check")
USES = Path("tests/errors/use")
WARNINGS = Path("tests/errors/warnings")


def cases(folder: Path) -> list[Path]:
    return sorted((ROOT / folder).glob("*.fdg"))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def relative(path: Path) -> Path:
    return path.relative_to(ROOT)


@pytest.mark.parametrize("path", cases(ERRORS) + cases(USES), ids=lambda p: p.stem)
def test_error_golden(path: Path) -> None:
    file = relative(path)
    with pytest.raises(FdgError) as info:
        fdg.check(file)
    check_golden(path.with_suffix(".expected"), str(info.value))


@pytest.mark.parametrize("path", cases(WARNINGS), ids=lambda p: p.stem)
def test_warnings_golden(path: Path) -> None:
    found = fdg.check(relative(path))
    assert found, "a warnings case must produce at least one warning"
    check_golden(path.with_suffix(".expected"), "\n".join(d.format() for d in found))


def test_cli_check_reports_the_same_text(capsys: pytest.CaptureFixture[str]) -> None:
    file = ERRORS / "couple_parity.fdg"
    assert main(["check", str(file)]) == 1
    assert capsys.readouterr().err == (ROOT / file).with_suffix(".expected").read_text()


def test_cli_check_prints_warnings_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    file = WARNINGS / "unused_input.fdg"
    assert main(["check", str(file)]) == 0
    assert capsys.readouterr().err == (ROOT / file).with_suffix(".expected").read_text()


def test_cli_unknown_diagram_is_a_bad_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "diagrams/nequip.fdg", "-d", "Nope"]) == 2
    assert "no diagram 'Nope'" in capsys.readouterr().err


def test_cli_bad_parameter_value_is_a_bad_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compile", "diagrams/nequip.fdg", "-p", "mul=abc"])
    assert info.value.code == 2
    assert "mul must be a number" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted({*keyword.kwlist, *GENERATED}))
def test_names_python_cannot_take_are_refused(name: str) -> None:
    # a diagram is a Python class and an input an argument of forward(): each name of this set breaks the module
    named_diagram = f"diagram {name}() {{ input x : 0e\n output y = x }}"
    for text in (named_diagram, f"diagram D() {{ input {name} : 0e\n output y = {name} }}"):
        with pytest.raises(FdgError, match=f"'{name}' cannot name an? (diagram|input): it is "):
            fdg.check(text)


@pytest.mark.parametrize("name", [*keyword.softkwlist, "tuple", "annotations", "inputs", "declared", "forward"])
def test_other_names_compile_into_modules_that_run(name: str) -> None:
    module = fdg.compile(f"diagram {name}() {{ input {name} : 0e\n output y = linear({name}) -> 0e }}")
    assert module(torch.ones(2, 1)).shape == (2, 1)
