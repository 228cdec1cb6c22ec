"""Stage 3, the IR: the typed graph every later stage reads.

Holds the wire types and vertex payloads and :class:`Diagram` (:mod:`fdg.ir.graph`), its deterministic text form
(:func:`dump`) and the verifier (:func:`fdg.ir.verify.check_ir`).  Takes nothing and returns nothing: it is the
value the checker produces and the passes and planner consume.  Guarantees: payloads are immutable, the graph is a
DAG whose every edge carries its producer's wire type, and ``check_ir`` accepts every diagram the checker and the
passes hand on (it raises ``IRError`` otherwise: a compiler bug, never a user error).
"""

from fdg.ir.dump import describe, dump
from fdg.ir.graph import (
    GENERATED,
    Activation,
    Add,
    Axis,
    Cat,
    Couple,
    CouplePath,
    Diagram,
    Feature,
    Fuse,
    Gate,
    Gather,
    IndexWire,
    Input,
    Linear,
    LinearPath,
    NormActivation,
    Output,
    Power,
    Radial,
    Scale,
    ScatterSum,
    Select,
    Sort,
    SphericalHarmonics,
    Vertex,
    WeightKind,
    Weights,
    WeightsWire,
    WireType,
    format_params,
)

__all__ = [
    "GENERATED",
    "Activation",
    "Add",
    "Axis",
    "Cat",
    "Couple",
    "CouplePath",
    "Diagram",
    "Feature",
    "Fuse",
    "Gate",
    "Gather",
    "IndexWire",
    "Input",
    "Linear",
    "LinearPath",
    "NormActivation",
    "Output",
    "Power",
    "Radial",
    "Scale",
    "ScatterSum",
    "Select",
    "Sort",
    "SphericalHarmonics",
    "Vertex",
    "WeightKind",
    "Weights",
    "WeightsWire",
    "WireType",
    "describe",
    "dump",
    "format_params",
]
