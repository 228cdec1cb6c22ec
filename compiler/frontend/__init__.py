"""Stage 1, the frontend: ``.fdg`` text to syntax trees.

Takes source text (a file or a string).  Returns the frozen syntax tree of :mod:`fdg.frontend.syntax`
(:func:`fdg.frontend.parser.parse`) and, for a file that uses others, the scope of diagrams it may call
(:mod:`fdg.frontend.uses`).  Guarantees: every node carries the :class:`~fdg.errors.Span` it came from; text
the grammar rejects raises :class:`~fdg.errors.FdgSyntaxError` at file:line:col, never a lark traceback; nothing
here gives the program a meaning (that is :mod:`fdg.checker`) and nothing imports torch.
"""
