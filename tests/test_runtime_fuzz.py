"""Run-time fuzzing: random diagrams that check, called with spoiled inputs.

Every call with a spoiled input either raises fdg's own :class:`~fdg.runtime.FdgInputError` or, where the spoil keeps
the values (a strided view), returns exactly what the contiguous call returns: never a crash, never a silently
different result.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from hypothesis import HealthCheck, given, settings
from module_inputs import random_inputs
from test_fuzz import programs

import fdg
from fdg.errors import FdgError
from fdg.runtime import FdgInputError

Spoil = Callable[[torch.Tensor, str], torch.Tensor | None]  # None: this spoil does not apply to that input


def _features(fn: Callable[[torch.Tensor], torch.Tensor]) -> Spoil:
    return lambda t, kind: fn(t) if kind != "index" else None


def _index(fn: Callable[[torch.Tensor], torch.Tensor]) -> Spoil:
    return lambda t, kind: fn(t) if kind == "index" and t.numel() else None


#: spoils that make an input wrong: the call must raise FdgInputError
WRONG: dict[str, Spoil] = {
    "a column short": lambda t, kind: t[:, :-1] if kind != "index" and t.shape[1] else None,
    "a row short": lambda t, kind: t[:-1] if t.shape[0] > 1 else None,
    "one row to broadcast": lambda t, kind: t[:1] if t.shape[0] > 1 and kind != "index" else None,
    "an extra axis": lambda t, kind: t[..., None],
    "flattened": _features(lambda t: t.reshape(-1)),
    "integer features": _features(lambda t: t.to(torch.int32)),
    "half precision": _features(lambda t: t.half()),
    "on the meta device": lambda t, kind: t.to("meta"),
    "a float index": _index(lambda t: t.double()),
    "an index past its axis": _index(lambda t: t + 1000),
    "a negative index": _index(lambda t: t - 1000),
}
#: spoils that keep the values: the call must compute what the contiguous call computes
KEPT: dict[str, Spoil] = {
    "every other element of a wider tensor": lambda t, kind: torch.stack([t, t], dim=-1)[..., 0],
    "a transposed copy transposed back": lambda t, kind: t.T.contiguous().T if t.dim() == 2 else None,
}


def _compiled(text: str) -> fdg.runtime.FdgModule | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fdg.check(text)
        except FdgError:
            return None
        return fdg.compile(text, fdg.api.diagram_names(text)[0]).double()


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(programs())
def test_spoiled_inputs_raise_fdg_errors_or_compute_the_same(text: str) -> None:
    module = _compiled(text)
    if module is None:
        return
    x = random_inputs(module, torch.float64, generator=1)
    want = _outputs(module(**x))
    for d in module.declared:  # every spoil of every input
        for spoil, make in (WRONG | KEPT).items():
            spoiled = make(x[d.name], d.kind)
            if spoiled is None:
                continue
            call = {**x, d.name: spoiled}
            if spoil in KEPT:
                for got, expected in zip(_outputs(module(**call)), want, strict=True):
                    torch.testing.assert_close(got, expected, atol=0, rtol=0, equal_nan=True)
                continue
            try:
                module(**call)
            except FdgInputError as err:
                assert f"`{d.name}`" in str(err)  # the message names the spoiled input (or it as the one disagreeing)
                continue
            raise AssertionError(f"{spoil} {d.name} of {list(x[d.name].shape)} was accepted:\n{text}")


def _outputs(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)
