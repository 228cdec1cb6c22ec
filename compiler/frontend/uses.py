"""``use "other.fdg"``: which diagrams each file may call, read from disk once per compilation.

The *scope* of a file is its own diagrams plus the diagrams defined in the files it uses.  ``use``
is not transitive (a file sees what it uses, not what those files use), so a file's scope never
changes because a library it relies on started using another one.  A name means one diagram in a
scope: a clash between a file's own diagram and a used one, or between two used files, is an error
naming both definitions, never silent shadowing.

A path in ``use`` is relative to the directory of the file holding the ``use`` (to the current
directory for source text given as a string).  Every problem found while loading a used file (it
is missing, does not parse, uses a file that uses it back, clashes) is reported where it is, with a
note at each ``use`` line that led there.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fdg.errors import FdgError, FdgTypeError, Source
from fdg.frontend import syntax
from fdg.frontend.parser import parse

#: the name api.read gives to source text passed as a string
STRING = "<string>"


#: the largest source file fdg reads (the diagrams of a model take a few kB: beyond this is not a diagram file)
MAX_SOURCE_BYTES = 1 << 20


def read_text(path: str | Path) -> str:
    """A source file's text: UTF-8, a byte-order mark ignored, at most :data:`MAX_SOURCE_BYTES` (``/dev/zero`` or a
    huge file is refused after reading that much, never loaded whole).  Raises OSError or ValueError."""
    with open(path, "rb") as f:
        data = f.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise ValueError(f"larger than {MAX_SOURCE_BYTES} bytes: not a diagram file")
    return data.decode("utf-8-sig")


def describe_error(exc: OSError | ValueError) -> str:
    """What went wrong reading a file, in a few words."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)


@dataclass(frozen=True)
class Definition:
    """A diagram callable in some file's scope, and the ``use`` line that brought it (None: the file's own)."""

    diagram: syntax.Diagram
    use: syntax.Use | None


Scope = Mapping[str, Definition]


@dataclass(frozen=True)
class Library:
    """A program and every file it uses, directly or not; equal when the same files hold the same text.

    ``files`` lists ``(name, text)`` of each file read, the root first: it is the whole input of a
    compilation, so ``api`` caches compiled modules by it (editing a used file is a new library).
    """

    files: tuple[tuple[str, str], ...]
    root: syntax.Program = field(compare=False)
    scopes: Mapping[Source, Scope] = field(compare=False, repr=False)

    def scope(self, source: Source) -> Scope:
        """The diagrams callable from the file ``source`` (a file of this library)."""
        return self.scopes[source]


@functools.lru_cache(maxsize=128)
def _parse(text: str, name: str) -> syntax.Program:
    return parse(text, name)


def parsed(source: Source) -> syntax.Program:
    """The syntax tree of a source, parsed once per (text, name): trees are immutable, so they are shared."""
    return _parse(source.text, source.name)


def load(program: syntax.Program) -> Library:
    """Read and parse every file ``program`` uses, transitively, and build each file's scope.

    >>> lib = load(parse("diagram D() { input x : 0e\\n output y = x }"))
    >>> sorted(lib.scope(lib.root.span.source)), len(lib.files)
    (['D'], 1)
    """
    loader = _Loader()
    source = program.span.source
    loader.files.append((source.name, source.text))
    loader.visit(program, (_key(source.name),))
    return Library(tuple(loader.files), program, loader.scopes)


def _key(name: str) -> str:
    """The identity of a file: two paths reaching one file (``a/../b.fdg``, links) are one file."""
    return name if name == STRING else os.path.realpath(name)


def _resolve(source: Source, use: syntax.Use) -> str:
    """The path of a used file as it is shown in messages: relative when the using file's path is."""
    directory = "" if source.name == STRING else os.path.dirname(source.name)
    return os.path.normpath(os.path.join(directory, use.path))


def _where(source: Source) -> str:
    if source.name == STRING:
        return "the current directory, for source text given as a string"
    return f"the directory of {source.name}"


class _Loader:
    def __init__(self) -> None:
        self.programs: dict[str, syntax.Program] = {}  # by file key
        self.scopes: dict[Source, Scope] = {}
        self.files: list[tuple[str, str]] = []

    def visit(self, program: syntax.Program, stack: tuple[str, ...]) -> None:
        """Build the scope of ``program`` (whose file key ends ``stack``), loading the files it uses first."""
        source = program.span.source
        table: dict[str, Definition] = {}
        for d in program.diagrams:
            if d.name.id in table:
                raise FdgTypeError(
                    f"diagram {d.name.id} is already defined at line {table[d.name.id].diagram.name.span.line}",
                    d.name.span,
                    "give each diagram of a file its own name",
                )
            table[d.name.id] = Definition(d, None)
        for use in program.uses:
            used = self._load(source, use, stack)
            for d in used.diagrams:
                first = table.get(d.name.id)
                if first is not None and first.diagram is not d:  # using one file twice is harmless
                    raise _clash(use, d, first)
                table[d.name.id] = Definition(d, use)
        self.scopes[source] = table

    def _load(self, source: Source, use: syntax.Use, stack: tuple[str, ...]) -> syntax.Program:
        path = _resolve(source, use)
        key = _key(path)
        if key in stack:
            names = [*(self._name(k) for k in stack[stack.index(key) :]), path]
            raise FdgTypeError(
                f"cycle of `use`: {' -> '.join(names)}",
                use.span,
                "files may not use each other in a circle; move the shared diagrams into a file both use",
            )
        if key in self.programs:
            return self.programs[key]
        try:
            text = read_text(path)
        except FileNotFoundError:
            raise FdgTypeError(
                f"cannot use {path}: no such file", use.span, f"a `use` path is relative to {_where(source)}"
            ) from None
        except (OSError, ValueError) as exc:
            raise FdgTypeError(f"cannot read {path}: {describe_error(exc)}", use.span) from None
        try:
            program = _parse(text, path)
            self.programs[key] = program
            self.files.append((path, text))
            self.visit(program, (*stack, key))
        except FdgError as error:
            raise error.noted(f"in {path}, used here", use.span) from None
        return program

    def _name(self, key: str) -> str:
        """The shown name of a file on the stack (the root keeps the name it was given)."""
        for name, _ in self.files:
            if _key(name) == key:
                return name
        return key


def _clash(use: syntax.Use, diagram: syntax.Diagram, first: Definition) -> FdgTypeError:
    where = (
        "defined in this file" if first.use is None else f'from use "{first.use.path}" at line {first.use.span.line}'
    )
    return FdgTypeError(
        f'use "{use.path}" brings a second diagram named {diagram.name.id}: '
        f"{diagram.name.span} and {first.diagram.name.span} ({where})",
        use.span,
        "a name means one diagram in a file; rename one of them",
    )
