"""The ``fdg`` command line (also ``python -m fdg``).

Exit status: 0 on success, 1 when the program has an error (reported as FILE:LINE:COL with a
caret), 2 on bad arguments (unknown diagram or parameter, unreadable file, bad flags).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from fdg import ir, passes
from fdg.checker.evaluate import ParamValue
from fdg.errors import Diagnostic, FdgArgumentError, FdgError
from fdg.runtime import Irreps

if TYPE_CHECKING:  # the back end loads torch: `fdg check` never needs it
    from fdg.planning.plan import Plan


def _param(text: str) -> tuple[str, ParamValue]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    for kind in (int, float, Irreps):
        try:
            return name.strip(), kind(value)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"parameter {name.strip()} must be a number or irreps, got {value!r}")


def _pin(text: str) -> tuple[str, str]:
    name, sep, lowering = text.partition("=")
    if not sep or not name.strip().isidentifier() or not lowering.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=LOWERING, e.g. m=grouped or f=folded:sparse, got {text!r}")
    return name.strip(), lowering.strip()


def _add_pin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pin",
        type=_pin,
        action="append",
        default=[],
        metavar="NAME=LOWERING",
        help="compute value NAME by LOWERING instead of the cost model's choice (repeatable; see docs/performance.md)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse's parser, reporting a bad argument in one line (``fdg report: --size: ...``) with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help lists the arguments)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fdg", description="Compile fusion diagrams (.fdg) into torch modules.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser("check", help="parse and validate files; exit 1 on any error")
    check.add_argument("files", nargs="+", metavar="FILE")
    comp = sub.add_parser("compile", help="write the generated module source")
    comp.add_argument("file", metavar="FILE")
    comp.add_argument("-d", "--diagram", metavar="NAME", help="which diagram (default: every diagram of FILE)")
    comp.add_argument(
        "-p",
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter, e.g. -p mul=16 (repeatable)",
    )
    comp.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file, or a directory to write one NAME.py per diagram (default: stdout)",
    )
    _add_pin(comp)
    comp.add_argument("--dump-ir", action="store_true", help="print the optimized IR instead of Python source")
    comp.add_argument(
        "--dump-after",
        metavar="PASS",
        choices=["lower", *(n for n, _ in passes.PASSES)],
        help="print the IR after this pass ('lower' for before any pass)",
    )
    draw = sub.add_parser("draw", help="a picture of the diagram (.svg or .png)")
    draw.add_argument("file", metavar="FILE")
    draw.add_argument("-d", "--diagram", metavar="NAME", help="which diagram (default: all of FILE, one under another)")
    draw.add_argument("-p", "--param", type=_param, action="append", default=[], metavar="NAME=VALUE")
    draw.add_argument("-o", "--output", required=True, metavar="PATH", help="the picture: a .svg or .png file")
    every = sub.add_parser("build", help="compile, report and draw every diagram of the files into a folder")
    every.add_argument("files", nargs="+", metavar="FILE")
    every.add_argument("-o", "--output", required=True, metavar="DIR", help="the folder (created if missing)")
    rep = sub.add_parser("report", help="the contraction cost report: plan vs naive baseline, FLOPs, bytes, memory")
    rep.add_argument("file", metavar="FILE")
    rep.add_argument("-d", "--diagram", metavar="NAME", help="which diagram (default: every diagram of FILE)")
    rep.add_argument("-p", "--param", type=_param, action="append", default=[], metavar="NAME=VALUE")
    rep.add_argument(
        "--size",
        type=_size,
        action="append",
        default=[],
        metavar="AXIS=N",
        help="rows of an axis, e.g. --size edge=20000 (repeatable; default edge=20000, other axes 1000)",
    )
    _add_pin(rep)
    rep.add_argument("--json", action="store_true", help="machine-readable JSON instead of text")
    port = sub.add_parser("port", help="convert a model of another library into a diagram, its state and a report")
    port.add_argument("library", choices=["mace"], help="the library that saved the model")
    port.add_argument("model", metavar="MODEL_FILE", help="the saved model (torch.save of the whole model)")
    port.add_argument("-o", "--output", required=True, metavar="DIR", help="the folder (created if missing)")
    return parser


def _size(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    from fdg.reporting.report import MAX_ROWS

    digits = value.strip()
    small = digits.isdigit() and len(digits.lstrip("0")) <= len(str(MAX_ROWS))  # never int() of 300 digits
    if not sep or not name.strip().isidentifier() or not small or not 1 <= int(digits) <= MAX_ROWS:
        raise argparse.ArgumentTypeError(
            f"expected AXIS=N with N a whole number from 1 to {MAX_ROWS}, got {text[:40]!r}"
        )
    return name.strip(), int(value)


def _names(args: argparse.Namespace) -> list[str]:
    """The diagrams a command works on: the one named with -d, else every diagram of the file."""
    from fdg.api import diagram_names

    names = [args.diagram] if args.diagram else diagram_names(Path(args.file))
    if not names:
        raise FdgArgumentError(f"{args.file} holds no diagram")
    return names


def _print_warnings(found: Sequence[Diagnostic]) -> None:
    for diagnostic in found:
        print(diagnostic.format(), file=sys.stderr)


def _check(files: list[str]) -> int:
    from fdg.api import check

    status = 0
    for path in files:
        try:
            _print_warnings(check(Path(path)))
        except FdgArgumentError:
            raise
        except FdgError as err:
            print(err, file=sys.stderr)
            status = 1
    return status


def _dump(args: argparse.Namespace, params: dict[str, ParamValue]) -> str:
    from fdg.api import read
    from fdg.checker.lower import lower
    from fdg.frontend.parser import parse

    source = read(Path(args.file))
    diagram = lower(parse(source.text, source.name), args.diagram, params).diagram
    if args.dump_after != "lower":
        for name, apply in passes.PASSES:
            diagram = apply(diagram)
            if name == args.dump_after:
                break
    return ir.dump(diagram) + "\n"


def _compile(args: argparse.Namespace) -> int:
    import warnings

    from fdg.api import FdgWarning, build

    params = dict(args.param)
    if args.dump_ir or args.dump_after:
        args.dump_after = args.dump_after or passes.PASSES[-1][0]
        _write(args.output, _dump(args, params))
        return 0
    names = _names(args)
    out_dir = (
        Path(args.output)
        if args.output and (len(names) > 1 or args.output.endswith("/") or Path(args.output).is_dir())
        else None
    )
    if len(names) > 1 and args.output is None:
        raise FdgArgumentError(
            f"{args.file} holds several diagrams ({', '.join(names)}): choose one with -d, or give -o DIRECTORY"
        )
    for name in names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FdgWarning)
            built = build(Path(args.file), name, pin=dict(args.pin), **params)
        for w in caught:
            print(w.message, file=sys.stderr)
        target = str(out_dir / f"{name}.py") if out_dir else args.output
        _write(target, built.source)
        if target:
            print(f"{args.file}: {name} -> {target}  ({_summary(built.plan, built.source)})")
    return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from fdg.api import report

    names = _names(args)
    reports = [report(Path(args.file), name, dict(args.size), pin=dict(args.pin), **dict(args.param)) for name in names]
    if args.json:
        found = [r.as_dict() for r in reports]
        print(json.dumps(found[0] if len(found) == 1 else found, indent=2))
    else:
        print("\n\n".join(map(str, reports)))
    return 0


def _build(args: argparse.Namespace) -> int:
    import warnings

    from fdg.api import FdgWarning
    from fdg.reporting.table import build_file, format_table

    out = Path(args.output)
    rows = []
    for path in args.files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FdgWarning)
            rows += build_file(Path(path), out)
        for w in caught:
            print(w.message, file=sys.stderr)
    print(format_table(rows, out))
    return 0


def _draw(args: argparse.Namespace) -> int:
    from fdg.api import draw

    path = draw(Path(args.file), args.diagram, output=args.output, **dict(args.param))
    print(f"{args.file} -> {path}")
    return 0


def _port(args: argparse.Namespace) -> int:
    from fdg.interop import mace, potential

    folder = mace.port(args.model, args.output)
    print(f"{args.model} -> {folder / potential.TEXT}, {folder / potential.STATE}, {folder / potential.REPORT}")
    return 0


def _summary(plan: Plan, source: str) -> str:
    vertices = len(plan.lowered)
    paths = sum(lw.paths for lw in plan.lowered.values())
    return f"{vertices} vertices, {paths} paths, {plan.learned} learned weights, {len(source.splitlines())} lines"


def _write(target: str | None, text: str) -> None:
    if target is None:
        sys.stdout.write(text)
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args.files)
        if args.command == "compile":
            return _compile(args)
        if args.command == "report":
            return _report(args)
        if args.command == "build":
            return _build(args)
        if args.command == "port":
            return _port(args)
        return _draw(args)
    except FdgArgumentError as err:
        print(f"fdg {args.command}: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an output that cannot be written: a missing folder, a file in the way, a full disk
        print(
            f"fdg {args.command}: cannot write {err.filename or 'the output'}: {err.strerror or err}", file=sys.stderr
        )
        return 2
    except FdgError as err:
        print(err, file=sys.stderr)
        return 1


def console() -> None:
    """Entry point of the ``fdg`` console script."""
    sys.exit(main())
