"""Stage 2, checking and lowering: a syntax tree and parameter values to the IR of one diagram.

Takes a :class:`~fdg.frontend.syntax.Program`, the diagram's name, parameter overrides and the file's scope of
callable diagrams.  Returns an :class:`~fdg.ir.Diagram` and the warnings found (:func:`fdg.checker.lower.lower`).
Guarantees: the diagram is well typed (every wire's irreps and axis is the one codegen uses, every coupling path is
allowed by the rules of :mod:`fdg.checker.rules`), calls of other diagrams are inlined, and the first user error
raises :class:`~fdg.errors.FdgTypeError` at its span with a hint.  Types are computed from exact tables; nothing
here imports torch.
"""
