"""nequip 0.19's weights in ``diagrams/nequip_interaction.fdg``.

A ConvNetLayer around an InteractionBlock keeps five weight tensors, and each one is a weight of the diagram:

=================================  ==============  ==============================================================
nequip (``state_dict`` key)        diagram         mapping
=================================  ==============  ==============================================================
``conv.sc.weight``                 ``sc_weight``   unchanged (e3nn's FullyConnectedTensorProduct layout)
``conv.linear_1.weight``           ``x_weight``    unchanged (e3nn's Linear layout)
``conv.edge_mlp.mlp.0.weight``     ``R_1_weight``  unchanged: ``(in, out)``, scaled by ``1 / sqrt(in)`` in both
``conv.edge_mlp.mlp.2.weight``     ``R_weight``    times ``sqrt(2) / c``: nequip's gain after a hidden layer, over
                                                   the unit-second-moment constant ``c`` that fdg's ``silu``
                                                   carries (e3nn's ``normalize2mom``) and nequip's does not
``conv.linear_2.weight``           ``v_1_weight``  unchanged: a Linear over ``irreps_mid.simplify()`` has the
                                                   layout of one over the unmerged sorted blocks
=================================  ==============  ==============================================================

The layer's hyperparameters are the diagram's parameters (``mul``, ``elements``, ``bessels``, ``r_max``, ``p``,
``width``, ``avg``); the state holds none of them, so they are the caller's to pass to ``fdg.compile``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch

from fdg.checker.activations import normalization

_MLP = re.compile(r"conv\.edge_mlp\.mlp\.(\d+)\.weight")
_UNCHANGED = {"conv.sc.weight": "sc_weight", "conv.linear_1.weight": "x_weight", "conv.linear_2.weight": "v_1_weight"}


def convnet_layer_state(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """The compiled ``NequIPConvNetLayer``'s weights from a nequip ConvNetLayer's ``state_dict`` (keys under
    ``prefix``, as in ``model.state_dict()`` of a whole model); load them with ``load_state_dict(..., strict=False)``
    (the CG buffers are the module's own).  Raises ``ValueError`` naming what the diagram does not express."""
    own = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    missing = [key for key in (*_UNCHANGED, "conv.edge_mlp.mlp.0.weight") if key not in own]
    if missing:
        raise ValueError(f"not a nequip ConvNetLayer state: no {', '.join(prefix + key for key in missing)}")
    for key in ("conv.linear_1.bias", "conv.linear_2.bias"):
        if key in own and own[key].numel():
            raise ValueError(f"{prefix}{key} is not empty: the diagram's linears have no bias (nequip's default)")
    layers = sorted((int(m.group(1)), value) for key, value in own.items() if (m := _MLP.fullmatch(key)))
    if len(layers) != 2:
        raise ValueError(
            f"the edge MLP has radial_mlp_depth = {len(layers) - 1}: the diagram's R = linear(silu(linear(embed)))"
            " has one hidden layer (nequip's default radial_mlp_depth = 1)"
        )
    (_, first), (_, last) = layers
    return {new: own[old].detach().reshape(-1) for old, new in _UNCHANGED.items()} | {
        "R_1_weight": first.detach().reshape(-1),
        "R_weight": (last.detach() * (math.sqrt(2) / normalization("silu"))).reshape(-1),
    }
