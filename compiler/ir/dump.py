"""The deterministic text form of a diagram, used by ``fdg compile --dump-ir`` and test failures."""

from __future__ import annotations

from fdg.ir.graph import (
    Activation,
    Add,
    Cat,
    Couple,
    CouplePath,
    Diagram,
    Fuse,
    Gate,
    Gather,
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
)


def describe(op: Vertex) -> str:
    """One-line text of a vertex, without its operands (used by :func:`dump`)."""
    match op:
        case Input(name=name):
            return f"input {name}"
        case Couple(mode=mode, weights=w, paths=paths):
            return f"couple[{mode}, {w}, paths={len(paths)}]"
        case Linear(weights=w, paths=paths):
            return f"linear[{w}, paths={len(paths)}]"
        case SphericalHarmonics(lmax=lmax):
            return f"sh[lmax={lmax}]"
        case Gather():
            return "gather"
        case ScatterSum():
            return "scatter_sum"
        case Add():
            return "add"
        case Scale(factor=factor):
            return f"scale[{factor!r}]"
        case Activation(function=function):
            return function
        case Radial(kind=kind, args=args):
            return f"{kind}[{', '.join(map(repr, args))}]"
        case Gate():
            return "gate"
        case NormActivation(function=function):
            return f"norm_activation[{function}]"
        case Cat():
            return "cat"
        case Select(start=start, stop=stop, channels=None):
            return f"select[{start}:{stop}]"
        case Select(start=start, channels=(c0, c1)):
            return f"channels[{start}][{c0}:{c1}]"
        case Sort(order=order):
            return f"sort[{', '.join(map(str, order))}]"
        case Fuse(weights=w, tree=tree, lmax=lmax):
            return f"fuse[{w}, tree={tree or 'auto'}{'' if lmax is None else f', lmax={lmax}'}]"
        case Power(nu=nu, weights=w):
            return f"power[nu={nu}, {w}]"
        case Output(name=name):
            return f"output {name}"
        case _:
            raise TypeError(f"not a vertex payload: {op!r}")


def dump(diagram: Diagram) -> str:
    """The deterministic text form of a diagram: one line per vertex in topological order.

    >>> from fdg.api import lower_source
    >>> print(dump(lower_source("diagram D() { input x : 0e\\n output y = x * 2 }", "D")))
    diagram D()
      %x  : 1x0e over batch = input x
      %_1 : 1x0e over batch = scale[2.0](%x)
      output y = %_1
    """
    g = diagram.graph
    params = diagram.params_text
    width = max((len(n) for n in g.nodes), default=0) + 1
    lines = [f"diagram {diagram.name}({params})"]
    for node in diagram.order():
        op = diagram.op(node)
        args = ", ".join(f"%{src}" for src in diagram.operands(node))
        if isinstance(op, Output):
            lines.append(f"  output {op.name} = {args}")
            continue
        text = describe(op) if isinstance(op, Input) else f"{describe(op)}({args})"
        lines.append(f"  {'%' + node:<{width}} : {diagram.out(node)} = {text}")
        if isinstance(op, Couple | Linear):
            lines.extend(f"      {_path_text(op, p)}" for p in op.paths)
    return "\n".join(lines)


def _path_text(op: Couple | Linear, path: CouplePath | LinearPath) -> str:
    if isinstance(path, CouplePath):
        return f"path {path.i1},{path.i2} -> {path.i_out}  weights{list(path.shape)}  alpha={path.alpha:.6g}"
    return f"path {path.i_in} -> {path.i_out}  alpha={path.alpha:.6g}"
