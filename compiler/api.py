"""The public entry points: ``fdg.compile``, ``fdg.emit``, ``fdg.check``.

The pipeline, one module per stage::

    text --parser--> syntax.Program --lower--> ir.Diagram --passes--> ir.Diagram --plan--> Plan --codegen--> source

Each entry point accepts a path to a ``.fdg`` file or the source text itself.  Compiled classes
are cached by (text, diagram, parameters), so building a second module of the same diagram only
runs ``__init__``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fdg import ir, passes
from fdg.checker.evaluate import ParamValue, parameter
from fdg.checker.lower import lower
from fdg.errors import Diagnostic, FdgArgumentError, FdgError, Source
from fdg.frontend import uses
from fdg.ir.verify import check_ir
from fdg.planning.pin import Pin

if TYPE_CHECKING:  # the back end (planning, codegen, the runtime) loads torch: `fdg.check` never needs it
    from fdg.planning.plan import Plan
    from fdg.reporting.report import Report
    from fdg.runtime.module import FdgModule


class FdgWarning(UserWarning):
    """A warning about a program (unused input, output irrep no path reaches, ...)."""


@dataclass(frozen=True)
class Built:
    """Everything the pipeline produced for one diagram."""

    plan: Plan
    source: str
    warnings: tuple[Diagnostic, ...]


def read(program: str | Path) -> Source:
    """A :class:`Source` from a path, or from text (anything containing ``{`` is taken as text)."""
    if isinstance(program, str) and "{" in program:
        return Source("<string>", program.removeprefix("\ufeff"))
    if not str(program):
        raise FdgArgumentError("no file given")
    try:
        return Source(str(program), uses.read_text(program))
    except (OSError, ValueError) as exc:
        raise FdgArgumentError(f"cannot read {program}: {uses.describe_error(exc)}") from None


def library(program: str | Path) -> uses.Library:
    """The program and every file it uses (``use "other.fdg"``), read and parsed."""
    return uses.load(uses.parsed(read(program)))


def diagram_names(program: str | Path) -> list[str]:
    """The names of the diagrams of a file (or source text), in source order."""
    return uses.parsed(read(program)).names


def lower_source(program: str | Path, diagram: str | None = None, **params: object) -> ir.Diagram:
    """Parse, check and lower one diagram, then run the passes: the IR ``fdg compile --dump-ir`` prints."""
    return _lowered(library(program), diagram, params)[0]


def _lowered(
    files: uses.Library, diagram: str | None, params: dict[str, ParamValue]
) -> tuple[ir.Diagram, tuple[Diagnostic, ...]]:
    result = lower(files.root, diagram, params, files)
    check_ir(result.diagram)
    return passes.run(result.diagram, check_ir), result.warnings


#: value name -> the lowering to use for it instead of the cost model's (a :class:`~fdg.planning.pin.Pin` or its short
#: form, e.g. ``"grouped"`` or ``"folded:sparse"``)
Pins = Mapping[str, str | Pin]


@functools.lru_cache(maxsize=128)
def _build(
    files: uses.Library,
    diagram: str | None,
    params: tuple[tuple[str, ParamValue], ...],
    pins: tuple[tuple[str, Pin], ...],
) -> Built:
    # keyed by the text of every file involved: editing a used file compiles afresh
    from fdg.codegen import emit_module
    from fdg.planning.plan import make_plan

    lowered, found = _lowered(files, diagram, dict(params))
    plan = make_plan(lowered, dict(pins))
    return Built(plan, emit_module(plan, files.root.span.source.name), found)


def build(program: str | Path, diagram: str | None = None, *, pin: Pins | None = None, **params: object) -> Built:
    """Run the whole pipeline once; warnings about the program are issued as :class:`FdgWarning`.

    ``pin`` maps value names to the lowering to use for them in place of the cost model's choice (see
    ``docs/performance.md``): it changes speed, never results.
    """
    pins = tuple(sorted((name, Pin.of(p)) for name, p in (pin or {}).items()))
    # normalized before the cache: 4, 4.0 and numpy.int64(4) are one value, 4.5 another (int and float hash alike)
    values = tuple(sorted((name, parameter(name, value)) for name, value in params.items()))
    built = _build(library(program), diagram, values, pins)
    for diagnostic in built.warnings:
        warnings.warn(FdgWarning(diagnostic.format()), stacklevel=3)
    return built


@functools.lru_cache(maxsize=128)
def _module_class(source: str, class_name: str) -> type[FdgModule]:
    from fdg.runtime.module import load_source

    return load_source(source, class_name)


def compile(program: str | Path, diagram: str | None = None, *, pin: Pins | None = None, **params: object) -> FdgModule:
    """Compile a diagram into a ``torch.nn.Module``.

    >>> import torch, fdg
    >>> mod = fdg.compile("diagram Lin(mul = 4) { input x : mul x (0e + 1o)\\n output y = linear(x) -> 2x0e + 2x1o }")
    >>> mod(torch.randn(10, 16)).shape
    torch.Size([10, 8])
    """
    from fdg.reporting.report import make_report

    built = build(program, diagram, pin=pin, **params)
    module = _module_class(built.source, built.plan.diagram.name)()
    module.report = make_report(built.plan)
    return module


def report(
    program: str | Path,
    diagram: str | None = None,
    sizes: Mapping[str, int] | None = None,
    *,
    pin: Pins | None = None,
    **params: object,
) -> Report:
    """The cost report of a diagram at the given axis sizes (``fdg report``); ``print`` it or call ``to_json()``.

    >>> import fdg
    >>> r = fdg.report("diagram D() { input x : 0e + 1o\n output y = linear(x) -> 0e + 1o }", sizes={"batch": 10})
    >>> r.sizes, r.plan.flops  # two 1 x 1 blocks (0e, and 1o on 3 components) per row: 4 multiply-adds x 2 FLOPs
    ({'batch': 10}, 80.0)
    """
    from fdg.reporting.report import make_report

    return make_report(build(program, diagram, pin=pin, **params).plan, sizes)


def emit(program: str | Path, diagram: str | None = None, *, pin: Pins | None = None, **params: object) -> str:
    """The standalone Python source of the compiled module (it imports only torch and fdg.runtime)."""
    return build(program, diagram, pin=pin, **params).source


def draw(program: str | Path, diagram: str | None = None, *, output: str | Path, **params: object) -> Path:
    """Draw a diagram (every diagram of the file when ``diagram`` is None) to ``output``, an ``.svg`` or ``.png``.

    >>> import fdg, tempfile
    >>> out = tempfile.mkdtemp() + "/lin.svg"
    >>> fdg.draw("diagram Lin() { input x : 0e\\n output y = linear(x) -> 0e }", output=out).read_text()[:5]
    '<?xml'
    """
    from fdg.drawing import draw as draw_program  # matplotlib loads only here

    return draw_program(program, diagram, output, params)


def check(program: str | Path) -> list[Diagnostic]:
    """Check every diagram of a file with its default parameters; returns the warnings, raises the first error."""
    files = library(program)
    found: list[Diagnostic] = []
    for d in files.root.diagrams:
        result = lower(files.root, d.name.id, {}, files)
        check_ir(result.diagram)
        found.extend(result.warnings)
    return found


__all__ = [
    "Built",
    "FdgError",
    "FdgWarning",
    "build",
    "check",
    "compile",
    "diagram_names",
    "draw",
    "emit",
    "lower_source",
    "read",
]
