"""cuEquivariance's pure-PyTorch ("naive") tensor products, wrapped to compute exactly fdg's / e3nn's function.

Imported only when ``cuequivariance_torch`` is installed (``pip install -e '.[bench]'``).  ``peers.py`` explains the
differences of layout and normalization that these wrappers bridge; the equality is checked by
``peers.check_case`` before any timing and by ``tests/test_peers.py``.
"""

from __future__ import annotations

import math

import cuequivariance as cue
import cuequivariance_torch as cuet
import torch
from e3nn import o3
from peers import Instruction


def _cue_irreps(irreps: o3.Irreps) -> cue.Irreps:
    return cue.Irreps("O3", str(irreps))


def _key(ir: cue.Irrep | o3.Irrep) -> tuple[int, int]:
    return (int(ir.l), int(ir.p))


class CueChannelWise(torch.nn.Module):
    """``ChannelWiseTensorProduct(x, sh(vec))`` with the blocks of each output irrep summed (e3nn's "uvu").

    Only a second operand of multiplicity 1 (spherical harmonics) is supported: then cuEquivariance's ``[u, v]``
    weight block of a path is e3nn's ``[mul1, 1]`` block, and only the order and scale of the blocks differ.
    """

    def __init__(self, irreps_x: o3.Irreps, lmax: int, irreps_out: o3.Irreps, instructions: list[Instruction]) -> None:
        super().__init__()
        irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        cue_x, cue_sh = _cue_irreps(irreps_x), _cue_irreps(irreps_sh)
        wanted = [cue.O3(ir.l, ir.p) for _, ir in irreps_out]
        self.sh = cuet.SphericalHarmonics(list(range(lmax + 1)), normalize=True, method="naive")
        self.tp = cuet.ChannelWiseTensorProduct(
            cue_x, cue_sh, wanted, layout=cue.mul_ir, shared_weights=False, internal_weights=False, method="naive"
        )
        descriptor = cue.descriptors.channelwise_tensor_product(cue_x, cue_sh, wanted)
        stp = descriptor.polynomial.operations[0][1]
        blocks = descriptor.outputs[0].irreps  # one block per path, sorted by irrep

        # Where each of cuEquivariance's weight segments comes from in e3nn's weight vector, and its scale.
        into = {io: sum(1 for ins in instructions if ins[2] == io) for io in range(len(irreps_out))}
        offsets, offset = [], 0
        for i1, _, _, _, _ in instructions:
            offsets.append(offset)
            offset += irreps_x[i1].mul
        instruction_of = {(i1, i2, _key(irreps_out[io].ir)): j for j, (i1, i2, io, _, _) in enumerate(instructions)}
        path_of_segment = {path.indices[0]: path.indices for path in stp.paths}
        index: list[int] = []
        scale: list[float] = []
        for segment in range(stp.operands[0].num_segments):
            _, i1, i2, block = path_of_segment[segment]
            j = instruction_of[(i1, i2, _key(blocks[block].ir))]
            mul = irreps_x[i1].mul
            index.extend(range(offsets[j], offsets[j] + mul))
            scale.extend([1 / math.sqrt(into[instructions[j][2]])] * mul)
        self.register_buffer("weight_index", torch.tensor(index))
        self.register_buffer("weight_scale", torch.tensor(scale))

        # Each output irrep of e3nn's is a run of consecutive cuEquivariance blocks: (start, blocks, block size).
        runs: dict[tuple[int, int], tuple[int, int, int]] = {}
        start = 0
        for mul, ir in blocks:
            first, count, size = runs.get(_key(ir), (start, 0, mul * ir.dim))
            runs[_key(ir)] = (first, count + 1, size)
            start += mul * ir.dim
        self.runs = [runs[_key(ir)] for _, ir in irreps_out]

    def map_weights(self, weight: torch.Tensor) -> torch.Tensor:
        """e3nn-layout per-sample weights ``[batch, numel]`` in cuEquivariance's path order and normalization."""
        return weight[:, self.weight_index] * self.weight_scale

    def forward(self, x: torch.Tensor, vec: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        blocks = self.tp(x, self.sh(vec), weight)
        n = blocks.shape[0]
        pieces = [blocks[:, s : s + c * d].reshape(n, c, d).sum(1) for s, c, d in self.runs]
        return torch.cat(pieces, dim=1)


class CueFullyConnected(torch.nn.Module):
    """``FullyConnectedTensorProduct(h, sh(vec))``: the same paths, weight layout and normalization as e3nn's."""

    def __init__(self, irreps_h: o3.Irreps, lmax: int, irreps_out: o3.Irreps, weight: torch.Tensor) -> None:
        super().__init__()
        irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.sh = cuet.SphericalHarmonics(list(range(lmax + 1)), normalize=True, method="naive")
        self.tp = cuet.FullyConnectedTensorProduct(
            _cue_irreps(irreps_h),
            _cue_irreps(irreps_sh),
            _cue_irreps(irreps_out),
            layout=cue.mul_ir,
            shared_weights=True,
            internal_weights=True,
            method="naive",
            dtype=weight.dtype,
        )
        with torch.no_grad():
            self.tp.weight.copy_(weight.reshape(1, -1))

    def forward(self, h: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        return self.tp(h, self.sh(vec))
