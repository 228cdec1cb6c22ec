"""Diagnostics: one exception hierarchy for every user-facing error.

Every error fdg reports about a program carries a :class:`Span` into the source text, a one-line
message and, where one helps, a hint.  Formatting follows the usual compiler shape::

    diagrams/nequip.fdg:12:29: error: 1o x 1o cannot produce 1o with mode uvu: parity
       12 |     m = couple(a, b) -> 1o [mode = uvu]
          |                         ^^
    hint: did you mean 1e?

Anything that is not an :class:`FdgError` escaping the compiler is a bug in fdg, never the user's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, eq=False)
class Source:
    """A named source text; spans point into it."""

    name: str
    text: str

    def line(self, lineno: int) -> str:
        lines = self.text.split("\n")  # lark counts lines by \n only
        return lines[lineno - 1] if 1 <= lineno <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A region of a source: 1-based line and column of its first and last character (inclusive)."""

    source: Source = field(repr=False, compare=False)
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.source, self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True)
class Diagnostic:
    """One message about a program: an error or a warning, located by a span."""

    severity: str  # "error" | "warning" | "note"
    message: str
    span: Span | None
    hint: str | None = None
    #: where else to look, innermost first: the `use` line that brought a file in, the call that instantiated a body
    notes: tuple[Diagnostic, ...] = ()

    def format(self) -> str:
        return "\n".join([self._format_self(), *(note.format() for note in self.notes)])

    def _format_self(self) -> str:
        if self.span is None:
            head = f"{self.severity}: {self.message}"
            return head if self.hint is None else f"{head}\nhint: {self.hint}"
        span = self.span
        raw = span.source.line(span.line).rstrip("\r")
        text = raw.expandtabs(4)
        gutter = f"{span.line:>5} | "
        start = len(raw[: span.column - 1].expandtabs(4))
        end = len(raw[: span.end_column].expandtabs(4)) if span.end_line == span.line else len(text)
        caret = " " * start + "^" * max(1, end - start)
        lines = [f"{span}: {self.severity}: {self.message}", f"{gutter}{text}", f"{' ' * 6}| {caret}"]
        if self.hint is not None:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class FdgError(Exception):
    """Base of every error fdg raises about user input (programs, parameters, arguments)."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.diagnostic = Diagnostic("error", message, span, hint)

    def noted(self, message: str, span: Span | None) -> FdgError:
        """Append a ``note:`` (e.g. the call that instantiated the body where the error is) and return self."""
        note = Diagnostic("note", message, span)
        self.diagnostic = replace(self.diagnostic, notes=(*self.diagnostic.notes, note))
        return self

    @property
    def message(self) -> str:
        return self.diagnostic.message

    @property
    def span(self) -> Span | None:
        return self.diagnostic.span

    @property
    def hint(self) -> str | None:
        return self.diagnostic.hint

    def __str__(self) -> str:
        return self.diagnostic.format()


class FdgSyntaxError(FdgError):
    """The text does not parse."""


class FdgTypeError(FdgError):
    """The program parses but is ill-typed: names, axes, irreps, modes, weights, parameters."""


class FdgArgumentError(FdgError):
    """Bad arguments to the API or the command line (unknown diagram, bad parameter override)."""
