"""Pins: the user's choice of lowering for a vertex, in place of the cost model's.

``fdg.compile(file, pin={"m": "grouped"})`` (or ``fdg compile --pin m=grouped``) computes value ``m`` by the grouped
lowering at every size.  A couple or linear takes a lowering of :data:`fdg.planning.lowerings.LOWERINGS` that applies
to it; a fuse takes one of its candidate evaluations as the report spells them, ``"folded"`` or
``"tree ((a, b), c)"``, and optionally, after a colon, the form of every product (``"folded:sparse"``).  Every choice
computes the same function: a pin changes speed, never results.
"""

from __future__ import annotations

from dataclasses import dataclass

from fdg.errors import FdgArgumentError

#: the forms of a fuse's products: one matmul with a dense table, that with the last operand after it, or entry by entry
FORMS = ("dense", "split", "sparse")


@dataclass(frozen=True)
class Pin:
    """A lowering (or a fuse's evaluation, with the form of its products) pinned for one value."""

    lowering: str
    form: str | None = None

    def __post_init__(self) -> None:
        if self.form is not None and self.form not in FORMS:
            raise FdgArgumentError(f"unknown form {self.form!r} of a fuse's products; the forms are {', '.join(FORMS)}")

    @classmethod
    def of(cls, value: str | Pin) -> Pin:
        """A pin from its short form: ``LOWERING`` or, for a fuse, ``EVALUATION[:FORM]``."""
        if isinstance(value, Pin):
            return value
        if not isinstance(value, str):
            raise FdgArgumentError(f"a pin is a lowering's name, got {value!r}")
        lowering, sep, form = value.partition(":")
        return cls(lowering.strip(), form.strip() if sep else None)

    def __str__(self) -> str:
        return self.lowering if self.form is None else f"{self.lowering}:{self.form}"
