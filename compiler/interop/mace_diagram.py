"""A mace-torch 0.3.16 model read into the sizes of its layers, and the ``.fdg`` text of exactly that model.

:func:`describe` reads every size from the modules themselves (their irreps, their instructions, their
buffers), never from the arguments the model was built with, and refuses anything the text does not express:
another interaction or readout class, another radial basis, a distance transform, pair repulsion, several heads,
a cuEquivariance or OpenEquivariance backend.  :func:`render` writes the diagram, one statement per weight, and
says where in mace-torch's ``state_dict`` each weight comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any  # mace-torch's and e3nn's modules, read by their attributes (fdg does not import mace)

import torch

BLOCKS = ("RealAgnosticInteractionBlock", "RealAgnosticResidualInteractionBlock")  # residual: False, True
_GATES = {"silu": torch.nn.functional.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


@dataclass(frozen=True)
class Layer:
    """One interaction and its product block; irreps are e3nn strings."""

    residual: bool  # RealAgnosticResidualInteractionBlock: skip_tp(h, attrs) is added after the product
    node: str  # the features it reads (linear_up's input)
    up: str  # linear_up's output
    target: str  # the interaction's irreps: linear's output, the symmetric contraction's input
    paths: int  # the convolution's weights per edge (the radial MLP's last width)
    avg: float  # avg_num_neighbors
    nu: int  # correlation
    out: str  # the product's irreps (and skip_tp's, in a residual layer)


@dataclass(frozen=True)
class Readout:
    """A readout of the features of layer ``layer``: linear, or linear, gate, linear (``width`` > 0)."""

    layer: int
    width: int
    gate: str


@dataclass(frozen=True)
class Spec:
    species: int
    bessels: int
    r_max: float
    p: int
    lmax: int
    radial: tuple[int, ...]  # the radial MLP's hidden widths
    embedding: str  # node_embedding's output
    layers: tuple[Layer, ...]
    readouts: tuple[Readout, ...]


def describe(model: Any) -> Spec:
    """The sizes of a mace-torch ``MACE`` or ``ScaleShiftMACE``; ``ValueError`` naming what fdg does not convert."""
    kind = type(model).__name__
    if kind not in ("MACE", "ScaleShiftMACE"):
        raise ValueError(f"{kind} is not a mace-torch MACE or ScaleShiftMACE model")
    for attribute, what in (
        ("pair_repulsion", "pair repulsion (ZBL)"),
        ("joint_embedding", "extra embeddings (embedding_specs)"),
    ):
        if hasattr(model, attribute):
            raise ValueError(f"the model uses {what}, which fdg does not convert")
    if len(getattr(model, "heads", ["Default"])) != 1:
        raise ValueError(f"the model has {len(model.heads)} heads ({', '.join(model.heads)}): fdg converts one")
    radial = model.radial_embedding
    basis = type(radial.bessel_fn).__name__
    if basis != "BesselBasis":
        raise ValueError(f"radial_type: the model's radial basis is {basis}; fdg converts BesselBasis ('bessel')")
    if hasattr(radial, "distance_transform"):
        raise ValueError(f"distance_transform: {type(radial.distance_transform).__name__} is not converted")
    if not getattr(radial, "apply_cutoff", True):
        raise ValueError("apply_cutoff=False is not converted (the cutoff multiplies the radial basis)")
    r_max = float(radial.bessel_fn.r_max)
    bessels = radial.bessel_fn.bessel_weights.numel()
    default = math.pi / r_max * torch.arange(1, bessels + 1, dtype=torch.float64)
    if not torch.allclose(radial.bessel_fn.bessel_weights.detach().double(), default, rtol=1e-6, atol=0):
        raise ValueError("the Bessel basis's frequencies were trained: fdg's bessel() keeps n pi / r_max")
    sh = model.spherical_harmonics
    if not sh.normalize or sh.normalization != "component":
        raise ValueError("the spherical harmonics must be normalized, with component normalization (MACE's default)")
    mlp = model.interactions[0].conv_tp_weights.hs[1:-1]
    layers = tuple(
        _layer(i, interaction, product, mlp)
        for i, (interaction, product) in enumerate(zip(model.interactions, model.products, strict=True))
    )
    return Spec(
        species=model.node_embedding.linear.irreps_in.dim,
        bessels=bessels,
        r_max=r_max,
        p=int(radial.cutoff_fn.p),
        lmax=sh.irreps_out.lmax,
        radial=tuple(mlp),
        embedding=_irreps(model.node_embedding.linear.irreps_out),
        layers=layers,
        readouts=_readouts(model.readouts, len(layers)),
    )


def _layer(index: int, interaction: Any, product: Any, mlp: list[int]) -> Layer:
    name = type(interaction).__name__
    if name not in BLOCKS:
        raise ValueError(
            f"interactions.{index} is a {name}: fdg converts {' and '.join(BLOCKS)} (mace_run_train's default)"
        )
    for module in (interaction.linear_up, interaction.conv_tp, interaction.linear, interaction.skip_tp, product.linear):
        if type(module).__module__.split(".")[0] != "e3nn":
            raise ValueError(f"interactions.{index} runs {type(module).__name__}: convert the model back to e3nn first")
    tp = interaction.conv_tp
    if any(i.connection_mode != "uvu" or not i.has_weight for i in tp.instructions):
        raise ValueError(f"interactions.{index}.conv_tp is not a weighted uvu tensor product")
    weights = interaction.conv_tp_weights
    if weights.hs[1:-1] != mlp or any(
        layer.act is not None and layer.act.f is not torch.nn.functional.silu for layer in weights
    ):
        raise ValueError(f"interactions.{index}.conv_tp_weights: the radial MLPs must share widths and use silu")
    if getattr(product, "use_agnostic_product", False):
        raise ValueError(f"products.{index} uses use_agnostic_product, which fdg does not convert")
    contraction = product.symmetric_contractions
    return Layer(
        residual=name == BLOCKS[1] and product.use_sc,
        node=_irreps(interaction.linear_up.irreps_in),
        up=_irreps(interaction.linear_up.irreps_out),
        target=_irreps(interaction.linear.irreps_out),
        paths=tp.weight_numel,
        avg=float(interaction.avg_num_neighbors),
        nu=max(c.correlation for c in contraction.contractions),
        out=_irreps(product.linear.irreps_out),
    )


def _readouts(readouts: Any, layers: int) -> tuple[Readout, ...]:
    if len(readouts) not in (1, layers):
        raise ValueError(f"the model has {len(readouts)} readouts for {layers} interactions")
    out = []
    for i, readout in enumerate(readouts):
        layer = i if len(readouts) == layers else layers - 1
        name = type(readout).__name__
        if name == "LinearReadoutBlock":
            out.append(Readout(layer, 0, ""))
            continue
        if name != "NonLinearReadoutBlock":
            raise ValueError(f"readouts.{i} is a {name}: fdg converts LinearReadoutBlock and NonLinearReadoutBlock")
        hidden = readout.linear_1.irreps_out
        if any(ir.l != 0 or ir.p != 1 for _, ir in hidden):
            raise ValueError(f"readouts.{i}: MLP_irreps {hidden} must be scalars (0e)")
        (act,) = {getattr(a, "f", a) for a in readout.non_linearity.acts}
        gate = next((key for key, f in _GATES.items() if f is act), None)
        if gate is None:
            raise ValueError(f"readouts.{i}: the gate {act} is not one of {', '.join(_GATES)}")
        out.append(Readout(layer, hidden.dim, gate))
    return tuple(out)


def _irreps(irreps: Any) -> str:
    return " + ".join(f"{mul}x{ir}" for mul, ir in irreps)


@dataclass(frozen=True)
class Source:
    """Where a weight of the diagram comes from: a ``state_dict`` key of interaction or product ``layer``, copied
    (``how = "copy"``), with its columns in the diagram's path order (``"paths"``, the radial MLPs' last layers), or
    projected onto ``power``'s basis (``"project"``, the symmetric contractions: ``key`` names the module)."""

    key: str
    layer: int = 0
    how: str = "copy"


@dataclass(frozen=True)
class Rendered:
    text: str
    sources: dict[str, Source]  # the diagram's weight name -> its source


def render(spec: Spec, name: str = "MACE") -> Rendered:
    """The diagram of ``spec``: one statement per weight, so each weight is named after its statement."""
    lines: list[str] = []
    sources: dict[str, Source] = {}

    def weight(statement: str, expression: str, source: str | Source) -> None:
        lines.append(f"    {statement} = {expression}")
        sources[f"{statement}_weight"] = source if isinstance(source, Source) else Source(source)

    lines.append("    Y    = sh(vec, lmax)")
    lines.append("    r    = length(vec)")
    lines.append(
        "    edge = couple(bessel(r, bessels, r_max), cutoff(r, r_max, p)) -> bessels x 0e [mode = uvu, weights = none]"
    )
    weight("h0", f"linear(attrs) -> {spec.embedding}", "node_embedding.linear.weight")
    for k, layer in enumerate(spec.layers, start=1):
        prefix = f"interactions.{k - 1}."
        lines += ["", f"    # interaction {k}: {BLOCKS[layer.residual]}, correlation {layer.nu}"]
        previous = "edge"
        for j, width in enumerate((*spec.radial, layer.paths)):
            statement = f"R{k}" if j == len(spec.radial) else f"R{k}{chr(ord('a') + j)}"
            argument = previous if j == 0 else f"silu({previous})"
            key = f"{prefix}conv_tp_weights.layer{j}.weight"
            weight(
                statement,
                f"linear({argument}) -> {width}x0e",
                Source(key, k - 1, "paths" if j == len(spec.radial) else "copy"),
            )
            previous = statement
        if layer.residual:
            weight(f"sc{k}", f"couple(h{k - 1}, attrs) -> {layer.out} [mode = uvw]", f"{prefix}skip_tp.weight")
        weight(f"up{k}", f"linear(h{k - 1}) -> {layer.up}", f"{prefix}linear_up.weight")
        lines.append(
            f"    m{k} = sort(sum(couple(up{k}[src], Y) -> {layer.target} "
            f"[mode = uvu, weights = R{k}, blocks = paths], by = dst))"
        )
        weight(f"mix{k}", f"linear(m{k}) -> {layer.target}", f"{prefix}linear.weight")
        if layer.residual:
            lines.append(f"    A{k} = mix{k} / avg{k}")
        else:
            weight(f"A{k}", f"couple(mix{k} / avg{k}, attrs) -> {layer.target} [mode = uvw]", f"{prefix}skip_tp.weight")
        lines.append(f"    B{k} = power(A{k}, {layer.nu}) -> {layer.out} [weights = learned[z]]")
        sources[f"B{k}_weight"] = Source(f"products.{k - 1}.symmetric_contractions", k - 1, "project")
        if layer.residual:
            weight(f"p{k}", f"linear(B{k}) -> {layer.out}", f"products.{k - 1}.linear.weight")
            lines.append(f"    h{k} = p{k} + sc{k}")
        else:
            weight(f"h{k}", f"linear(B{k}) -> {layer.out}", f"products.{k - 1}.linear.weight")
    lines += [
        "",
        "    # readouts: "
        + ", ".join(f"{'NonLinear' if r.width else 'Linear'}ReadoutBlock(h{r.layer + 1})" for r in spec.readouts),
    ]
    terms = []
    for i, readout in enumerate(spec.readouts):
        features = f"h{readout.layer + 1}"
        if readout.width:
            weight(f"r{i + 1}", f"linear({features}) -> {readout.width}x0e", f"readouts.{i}.linear_1.weight")
            weight(f"e{i + 1}", f"linear({readout.gate}(r{i + 1})) -> 1x0e", f"readouts.{i}.linear_2.weight")
        else:
            weight(f"e{i + 1}", f"linear({features}) -> 1x0e", f"readouts.{i}.linear.weight")
        terms.append(f"e{i + 1}")
    lines.append(f"    output energy = {' + '.join(terms)}")
    params = {"species": spec.species, "lmax": spec.lmax, "bessels": spec.bessels, "r_max": spec.r_max, "p": spec.p}
    params |= {f"avg{k}": layer.avg for k, layer in enumerate(spec.layers, start=1)}
    header = [
        f"# mace-torch 0.3.16's {len(spec.layers)}-interaction MACE, written by fdg.interop.mace.convert: the site",
        "# energies less E0, before MACE's scale and shift (those stay in fdg.interop.potential.Potential).",
        f"diagram {name}({', '.join(f'{key} = {value!r}' for key, value in params.items())}) {{",
        "    input  attrs : species x 0e over node         # one_hot(z), MACE's node_attrs",
        "    input  z     : index node -> species          # the element of each atom",
        "    input  vec   : 1o over edge                   # r[receiver] - r[sender] + shift",
        "    input  src   : index edge -> node             # sender (edge_index[0])",
        "    input  dst   : index edge -> node             # receiver (edge_index[1])",
    ]
    return Rendered("\n".join([*header, *lines, "}", ""]), sources)
