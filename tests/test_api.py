"""The Python API at its edges: parameter values, the build cache, and what it reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fdg
from fdg.errors import FdgArgumentError
from fdg.frontend.uses import MAX_SOURCE_BYTES

LINEAR = "diagram Lin(mul = 2) { input x : mul x 0e\n output y = linear(x) -> mul x 0e }"


@pytest.mark.parametrize("mul", [3, np.int64(3), np.int32(3), 3.0, np.float64(3.0)])
def test_integral_parameters_of_any_type_are_one_value(mul: object) -> None:
    assert fdg.compile(LINEAR, mul=mul).inputs["x"] == "3x0e over batch"  # type: ignore[arg-type]


@pytest.mark.parametrize("mul", [float("nan"), float("inf"), "3", None, True])
def test_other_parameter_values_are_refused(mul: object) -> None:
    with pytest.raises(FdgArgumentError, match="parameter 'mul' must be a"):
        fdg.compile(LINEAR, mul=mul)  # type: ignore[arg-type]


def test_whether_a_value_is_accepted_does_not_depend_on_the_cache() -> None:
    # 4 and 4.0 hash alike, so a cache keyed by value alone answered 4.0 as it had answered 4: in a fresh process,
    # 4.0 alone, 4 then 4.0, and 4.0 then 4 all compile the same module
    calls = {"alone": [4.0], "after 4": [4, 4.0], "before 4": [4.0, 4]}
    for order in calls.values():
        script = "import fdg\n" + "\n".join(f"print(fdg.compile({LINEAR!r}, mul={m}).inputs)" for m in order)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert set(result.stdout.splitlines()) == {"{'x': '4x0e over batch'}"}


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.fdg"
    path.write_bytes(b"\xef\xbb\xbf" + LINEAR.encode())
    assert fdg.check(path) == []
    assert fdg.emit("\ufeff" + LINEAR) == fdg.emit(LINEAR)


def test_huge_and_endless_files_are_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.fdg"
    big.write_text(LINEAR + "\n" + "#" * MAX_SOURCE_BYTES)
    for path in (big, Path("/dev/zero")):
        with pytest.raises(FdgArgumentError, match=f"larger than {MAX_SOURCE_BYTES} bytes"):
            fdg.check(path)
