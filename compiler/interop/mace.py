"""mace-torch 0.3.16 models as fdg diagrams: :func:`convert` writes a model's ``.fdg`` text, compiles it and carries
the weights over.

The text (:mod:`fdg.interop.mace_diagram`) has one statement per weight, so every weight of the compiled diagram
is named after its statement and comes from one ``state_dict`` entry of the model:

======================================================  =====================  ===============================
mace-torch                                              diagram                mapping
======================================================  =====================  ===============================
``node_embedding.linear.weight``                        ``h0_weight``          unchanged (e3nn's Linear layout)
``interactions.I.conv_tp_weights.layerJ.weight``        ``RKa_weight`` ...     unchanged: FullyConnectedNet's
                                                        ``RK_weight``          ``(in, out)``, ``1 / sqrt(in)``; the
                                                                               last one's columns in the
                                                                               diagram's path order
``interactions.I.linear_up.weight``, ``.linear.``       ``upK``, ``mixK``      unchanged
``interactions.I.skip_tp.weight``                       ``AK`` (first), ``scK``  unchanged (FullyConnectedTP)
``products.I.symmetric_contractions``                   ``BK_weight``          projected onto fdg's basis
``products.I.linear.weight``                            ``hK`` or ``pK``       unchanged
``readouts.I.linear``, ``linear_1``, ``linear_2``       ``eJ``, ``rJ``, ``eJ``  unchanged
======================================================  =====================  ===============================

(``K = I + 1``.)  MACE's symmetric contraction spans the same polynomials as fdg's ``power`` on an over-complete
basis, so its weights have no one-to-one image.  Each channel of each species is a polynomial of that channel
alone, and the outputs are linear in the weights; so with ``Phi`` the outputs of fdg's basis (one channel, every
basis element) on random inputs and ``Y`` those of MACE's contraction with its weights on the same inputs (one
column per channel), fdg's weights are the exact solution of ``Phi X = Y``.  The residual is checked: a MACE
whose space differs is refused, never approximated.  So this module needs the model itself, not only its state.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any  # mace-torch's modules, read by their attributes (fdg does not import mace)

import torch

import fdg
from fdg.errors import FdgArgumentError, FdgError
from fdg.interop.mace_diagram import Source, describe, render
from fdg.interop.potential import Potential


def convert(model: Any) -> Potential:
    """A mace-torch ``MACE`` or ``ScaleShiftMACE`` as a :class:`~fdg.interop.potential.Potential`: the same
    energies, forces and stresses, from a diagram written for this model (``.text``; ``.write(path)``).  Raises
    ``ValueError`` naming the first part of the model fdg does not convert."""
    spec = describe(model)
    rendered = render(spec)
    energies = model.atomic_energies_fn.atomic_energies.detach().reshape(-1)
    scale_shift = getattr(model, "scale_shift", None)
    scale, shift = (1.0, 0.0) if scale_shift is None else (float(scale_shift.scale), float(scale_shift.shift))
    try:
        potential = Potential(rendered.text, model.atomic_numbers.tolist(), energies, spec.r_max, scale, shift)
    except FdgError as err:
        raise ValueError(f"fdg cannot express this model; the diagram written for it says:\n{err}") from None
    potential = potential.to(next(model.parameters()).dtype)  # a float64 model converts to a float64 potential
    state = _state(model, rendered.sources)
    missing, unexpected = potential.core.load_state_dict(state, strict=False)
    assert not unexpected and not [key for key in missing if key.endswith("_weight")], (missing, unexpected)
    return potential


def port(model_file: str | Path, folder: str | Path) -> Path:
    """``fdg port mace MODEL_FILE -o DIR``: read a model mace-torch saved (``torch.save(model, ...)``; unpickling it
    needs mace-torch installed), convert it and :meth:`~fdg.interop.potential.Potential.save` it into ``folder``."""
    try:
        with _unsafe_loads_allowed():  # importing mace-torch's e3nn 0.4.4 torch.load()s pickled constants
            model = torch.load(model_file, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as err:
        raise FdgArgumentError(
            f"cannot read {model_file}: it needs the module {err.name} (install mace-torch)"
        ) from None
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as err:
        raise FdgArgumentError(f"cannot read {model_file}: {err}") from None
    try:
        potential = convert(model)
    except ValueError as err:
        raise FdgArgumentError(f"{model_file}: {err}") from None
    return potential.save(folder)


@contextlib.contextmanager
def _unsafe_loads_allowed() -> Iterator[None]:
    """``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for a while, then as it was."""
    before = os.environ.get(_UNSAFE)
    os.environ[_UNSAFE] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[_UNSAFE]
        else:
            os.environ[_UNSAFE] = before


_UNSAFE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


def mace_state(model: Any) -> dict[str, torch.Tensor]:
    """The weights of the diagram :func:`convert` writes for ``model`` (``diagrams/mace.fdg`` uses the same
    names).  Load them with ``load_state_dict(..., strict=False)``."""
    return _state(model, render(describe(model)).sources)


def _state(model: Any, sources: dict[str, Source]) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith(".bias") and value.numel():
            raise ValueError(f"{key} is not empty: the diagram's linears have no bias (MACE's default)")
    out = {}
    for name, source in sources.items():
        if source.how == "project":
            out[name] = _project(model.products[source.layer].symmetric_contractions)
        elif source.how == "paths":
            out[name] = state[source.key].detach()[:, _path_order(model.interactions[source.layer].conv_tp)].reshape(-1)
        else:
            out[name] = state[source.key].detach().reshape(-1)
    return out


def _path_order(tp: Any) -> torch.Tensor:
    """The columns of MACE's radial weights in the diagram's order.  MACE sorts its convolution's instructions by
    output block (``tp_out_irreps_with_instructions``), so its per-edge weights come in that order; the diagram's
    paths, ``blocks = paths``, keep e3nn's: by input irrep, edge irrep, then output degree."""
    paths = [(i.i_in1, i.i_in2, tp.irreps_out[i.i_out].ir.l) for i in tp.instructions]
    sizes = [tp.irreps_in1[i.i_in1].mul * tp.irreps_in2[i.i_in2].mul for i in tp.instructions]
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    order = sorted(range(len(paths)), key=paths.__getitem__)
    return torch.cat([torch.arange(starts[k], starts[k] + sizes[k]) for k in order])


def _project(contraction: Any) -> torch.Tensor:
    """fdg's ``[species, K * mul]`` power weights that give what MACE's ``contraction`` gives."""
    tensors = {name: value.detach().double() for name, value in contraction.named_parameters()}
    tensors |= {name: value.double() for name, value in contraction.named_buffers() if value.is_floating_point()}
    irreps_in, irreps_out = contraction.irreps_in, contraction.irreps_out
    mul = irreps_in[0].mul
    nu = max(c.correlation for c in contraction.contractions)
    species = contraction.contractions[0].weights_max.shape[0]
    basis, k = _basis(" + ".join(str(ir) for _, ir in irreps_in), nu, " + ".join(str(ir) for _, ir in irreps_out))
    dim_in, dim_out = irreps_in.dim // mul, irreps_out.dim // mul
    generator = torch.Generator().manual_seed(0)
    rows = -(-3 * k // dim_out) + 8  # three equations per unknown, at least
    x = torch.randn(rows, dim_in, generator=generator, dtype=torch.float64)
    phi = basis(x)  # [rows * dim_out, K]
    weights = []
    for s in range(species):
        attrs = torch.nn.functional.one_hot(torch.full((rows,), s), species).to(torch.float64)
        with torch.no_grad():
            y = torch.func.functional_call(contraction, tensors, (x[:, None, :].expand(rows, mul, dim_in), attrs))
        blocks = y.split([mul * ir.dim for _, ir in irreps_out], dim=1)
        y = torch.cat([b.reshape(rows, mul, -1) for b in blocks], dim=2)  # [rows, mul, dim_out]
        target = y.permute(0, 2, 1).reshape(rows * dim_out, mul)
        solution = torch.linalg.lstsq(phi, target, driver="gelsd").solution  # [K, mul]
        residual = (phi @ solution - target).abs().max().item()
        if residual > 1e-9 * max(1.0, target.abs().max().item()):
            raise ValueError(
                f"MACE's symmetric contraction {irreps_in} -> {irreps_out} (correlation {nu}) is not in the span of "
                f"fdg's power (residual {residual:.1e}): the diagram cannot express this product basis"
            )
        weights.append(solution.reshape(-1))
    return torch.stack(weights)


def _basis(irreps_in: str, nu: int, irreps_out: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """fdg's power basis for one channel: ``x [rows, dim_in] -> [rows * dim_out, K]`` (d outputs / d weights)."""
    module = fdg.compile(
        f"diagram P() {{\n input A : {irreps_in}\n output B = power(A, {nu}) -> {irreps_out}\n}}"
    ).double()
    ((name, weight),) = module.named_parameters()

    def outputs(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, {name: w}, (x,)).reshape(-1)

    def basis(x: torch.Tensor) -> torch.Tensor:
        return torch.func.jacrev(outputs)(weight.detach(), x)

    return basis, weight.numel()
