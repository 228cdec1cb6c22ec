"""Stage 5, planning: the optimized IR to a :class:`~fdg.planning.plan.Plan`, every decision codegen needs.

Takes an :class:`~fdg.ir.Diagram` after the passes.  Returns a ``Plan`` (:func:`fdg.planning.plan.make_plan`): the
Python name of every value, the CG buffers and learned parameters, and for every vertex the lowering chosen by the
cost model (:mod:`fdg.cost`) with its priced steps and those of the naive baseline.  The ``fuse`` planner
(:mod:`fdg.planning.fuse`: trees, evaluations, folding) and the ``power`` planner (:mod:`fdg.planning.power`) live
here.  Guarantees: the plan is a pure function of the diagram (identical diagrams give identical plans), every
candidate it may choose computes the same function, and codegen never has to search again.
"""
