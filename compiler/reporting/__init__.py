"""Stage 8, the report: what a compiled diagram costs, read from its plan before it runs.

Takes a :class:`~fdg.planning.plan.Plan` and axis sizes.  Returns a :class:`~fdg.reporting.report.Report` with its
text and JSON forms (SPEC section 5).  Guarantees: every number is the cost model's estimate for the plan codegen
emits, never a measurement; bad sizes are refused with an :class:`~fdg.errors.FdgArgumentError`.
"""
