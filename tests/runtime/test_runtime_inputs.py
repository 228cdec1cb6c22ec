"""A compiled module checks its inputs before it computes (fdg.runtime.inputs): every wrong tensor is refused with
a message in the diagram's terms, never computed into a wrong result."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from golden_util import check_golden
from module_inputs import random_inputs

import fdg
from fdg.runtime import FdgInputError

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "errors" / "inputs.expected"

CONV = fdg.compile(str(ROOT / "diagrams" / "nequip.fdg"), mul=4)
# a fixed-range index (learned[z] over 3 species) and an element-wise sum, which broadcasting would accept
SPECIES = fdg.compile("""diagram Species() {
    input h : 4x0e + 4x1o
    input g : 4x0e + 4x1o
    input z : index batch -> 3
    output y = linear(h) -> 4x0e + 4x1o [weights = learned[z]]
    output s = h + g
}""")

Inputs = dict[str, torch.Tensor]
#: name -> (module, how the valid inputs are spoiled)
BAD: dict[str, tuple[fdg.runtime.FdgModule, Callable[[Inputs], Inputs]]] = {
    "too few columns": (CONV, lambda x: {**x, "h": x["h"][:, :12]}),
    "a row axis missing": (CONV, lambda x: {**x, "vec": x["vec"][0]}),
    "an extra axis": (CONV, lambda x: {**x, "h": x["h"][:, :, None]}),
    "flat per-edge weights": (CONV, lambda x: {**x, "R": x["R"][0]}),
    "rows disagree along an axis": (CONV, lambda x: {**x, "vec": x["vec"][:-1]}),
    "index rows disagree": (CONV, lambda x: {**x, "src": x["src"][:-1]}),
    "index past its target": (CONV, lambda x: {**x, "dst": x["dst"] + 100}),
    "negative index": (CONV, lambda x: {**x, "src": x["src"] - 100}),
    "float index": (CONV, lambda x: {**x, "src": x["src"].double()}),
    "integer features": (CONV, lambda x: {**x, "h": x["h"].long()}),
    "another dtype than the module": (CONV, lambda x: {**x, "vec": x["vec"].float()}),
    "another device": (CONV, lambda x: {**x, "h": x["h"].to("meta")}),
    "not a tensor": (CONV, lambda x: {**x, "R": x["R"].tolist()}),
    "a broadcastable operand": (SPECIES, lambda x: {**x, "g": x["g"][:1]}),
    "past a fixed range": (SPECIES, lambda x: {**x, "z": torch.full_like(x["z"], 3)}),
}


def _valid(module: fdg.runtime.FdgModule) -> Inputs:
    return random_inputs(module.double(), torch.float64, generator=3)


def test_messages_name_the_input_and_its_declaration() -> None:
    found = []
    for case, (module, spoil) in BAD.items():
        with pytest.raises(FdgInputError) as info:
            module(**spoil(_valid(module)))
        found.append(f"{case}: {info.value}")
    check_golden(GOLDEN, "\n".join(found))


def test_valid_inputs_pass_and_non_contiguous_ones_compute_the_same() -> None:
    x = _valid(CONV)
    strided = {k: torch.stack([v, v], dim=-1)[..., 0] for k, v in x.items()}  # the same values, every other element
    assert not strided["h"].is_contiguous()
    torch.testing.assert_close(CONV(**strided), CONV(**x), atol=1e-12, rtol=0)


def test_checks_can_be_turned_off_and_survive_pickling() -> None:
    module = pickle.loads(pickle.dumps(SPECIES))
    x = _valid(module)
    bad = {**x, "g": x["g"][:1]}
    with pytest.raises(FdgInputError):
        module(**bad)
    module.checks = False
    module(**bad)  # unchecked: broadcasting computes something else, which is what turning checks off means
    assert pickle.loads(pickle.dumps(module)).checks is False


def test_checks_cost_little_next_to_the_computation() -> None:
    # not a timing assertion: the checks do no tensor work but one aminmax per index (and reading its two numbers)
    x = _valid(CONV)
    with torch.autograd.profiler.profile() as prof:
        fdg.runtime.check_inputs(CONV, *x.values())
    ops = [e.name for e in prof.function_events]
    assert ops.count("aten::aminmax") == 2
    assert set(ops) <= {"aten::aminmax", "aten::item", "aten::_local_scalar_dense", "aten::fill_", "aten::empty"}
