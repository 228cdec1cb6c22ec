"""The ``fuse`` planner: coupling trees, the candidate evaluations of each tree and the cheapest one.

Takes a :class:`~fdg.ir.Fuse` vertex and its operands' wire types.  Returns a
:class:`~fdg.planning.fuse.planner.FusePlan`: the chosen tree and evaluation (dense, split, sparse or the folded
tensor), the exact tables it reads and what the report says about the alternatives.  Guarantees: every candidate
computes the same function (they differ only in cost), and tables are exact.
"""
