"""Side-by-side timing in one process: interleaved rounds, warm-up, medians, ratios to fdg.

Timings on a shared machine drift (other processes, frequency scaling, caches).  Running the peers in turn inside
each round (fdg, e3nn, cue, fdg, e3nn, cue, ...) exposes all of them to the same drift, so their *ratios* are
meaningful where absolute times are not; that is why only ratios are printed.  Each ratio is
``median(peer) / median(fdg)`` — above 1 means fdg is faster — followed by the range of the per-round ratios, which
shows how much to trust it.

This module needs only torch, so that ``power.py`` can use it in the MACE environment.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

Runner = Callable[[], torch.Tensor]


@dataclass
class Case:
    """One benchmark case: runners computing the same function, and what they need.

    ``runners`` maps a peer's name ("fdg", "e3nn", "cue", ...) to a closure over the prepared inputs that returns
    the output.  ``fdg_inputs`` are the fdg module's arguments (for ``torch.compile``); ``shared`` are the inputs
    every runner reads, whose gradients ``peers.check_case`` compares; ``leaves`` are all tensors a backward pass
    fills (inputs and parameters), which the harness clears between calls so that no run pays for accumulating into
    another's gradients.  ``bounds`` are timed beside the runners but compute something else of the same work (a
    roofline such as one ``torch.mm`` of the same FLOPs), so they are not checked.
    """

    title: str
    fdg_module: torch.nn.Module | None
    fdg_inputs: tuple[torch.Tensor, ...]
    runners: dict[str, Runner]
    shared: tuple[torch.Tensor, ...]
    leaves: list[torch.Tensor] = field(default_factory=list)
    bounds: dict[str, Runner] = field(default_factory=dict)


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark script shares."""
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice, printed)")


def apply_timing_arguments(args: argparse.Namespace) -> None:
    """Fix the thread count before anything runs: ratios taken with different counts do not compare."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def describe_machine() -> str:
    """The facts a reader needs to compare two runs: device, threads, torch version, dtype, load.

    The load matters beyond drift: when other processes hold the cores, every parallel kernel waits at its barrier
    for a descheduled thread, so a module made of many small kernels slows down far more than one of a few large
    ones.  Interleaving cannot correct that, hence the warning (``--threads 1`` is robust to it).
    """
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    text = (
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{str(torch.get_default_dtype()).removeprefix('torch.')}, load average {load:.1f} on {cpus} CPUs"
    )
    if torch.get_num_threads() > 1 and load > cpus - 1:
        text += "\n  warning: the CPUs are busy; ratios with more than one thread are unreliable (try --threads 1)"
    return text


def _clear(leaves: Sequence[torch.Tensor]) -> None:
    for leaf in leaves:
        leaf.grad = None


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _once(run: Runner, backward: bool, no_grad: bool = True) -> float:
    """Seconds for one call: forward and ``out.pow(2).sum().backward()``, or forward alone: without autograd, or
    with it (``no_grad=False``: for a runner that takes its own gradients, such as forces).

    The cyclic garbage collector is off during the call, so that a collection triggered by one peer's garbage is
    not billed to another (tensors are freed by reference counting either way).
    """
    _sync()
    gc.disable()
    try:
        start = time.perf_counter()
        if backward:
            run().pow(2).sum().backward()
        else:
            with torch.set_grad_enabled(not no_grad):
                run()
        _sync()
        return time.perf_counter() - start
    finally:
        gc.enable()


class _Largest(TorchDispatchMode):
    """Records the largest tensor any torch call returns while active (kernels' outputs and autograd's alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, ...] = ()
        self.bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.numel() * t.element_size() > self.bytes:
                self.shape, self.bytes = tuple(t.shape), t.numel() * t.element_size()
        return out


def largest_tensor(run: Runner, leaves: Sequence[torch.Tensor]) -> tuple[tuple[int, ...], int]:
    """The shape and bytes of the largest tensor one forward+backward makes (eager runners only)."""
    _clear(leaves)
    with _Largest() as mode:
        run().pow(2).sum().backward()
    _clear(leaves)
    return mode.shape, mode.bytes


def interleaved(
    runners: dict[str, Runner],
    leaves: Sequence[torch.Tensor],
    repeat: int,
    warmup: int,
    backward: bool,
    no_grad: bool = True,
) -> dict[str, list[float]]:
    """Per-runner lists of ``repeat`` times, taken round-robin after ``warmup`` untimed rounds (``_once``'s
    ``backward`` and ``no_grad``)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(warmup + repeat):
        gc.collect()
        for name, run in runners.items():
            _clear(leaves)
            seconds = _once(run, backward, no_grad)
            if round_ >= warmup:
                times[name].append(seconds)
    _clear(leaves)
    return times


def compile_fdg(case: Case, backends: Sequence[str] = ("inductor", "aot_eager")) -> tuple[Runner, str, float] | None:
    """``torch.compile(fdg_module, fullgraph=True)``: the runner, the backend that worked and its first-call seconds.

    Inductor needs a C++ compiler and can fail on a bare CPU box; then the next backend is tried.  Returns None
    (after printing why) when no backend works.
    """
    if case.fdg_module is None:
        return None
    for backend in backends:
        torch._dynamo.reset()
        compiled = torch.compile(case.fdg_module, fullgraph=True, backend=backend)

        def run(compiled: Callable[..., torch.Tensor] = compiled) -> torch.Tensor:
            return compiled(*case.fdg_inputs)

        try:
            seconds = _once(run, backward=True)
            _once(run, backward=False)  # the no-grad graph is a second compilation; keep it out of the timings
        except Exception as exc:  # any backend failure: report it and try the next one
            print(f"  torch.compile backend {backend} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            continue
        finally:
            _clear(case.leaves)
        return run, backend, seconds
    return None


def first_call(run: Runner, leaves: Sequence[torch.Tensor]) -> float:
    """Seconds of the first forward+backward call (lazy initialisation, allocator warm-up and all)."""
    seconds = _once(run, backward=True)
    _clear(leaves)
    return seconds


def print_profile(run: Runner, leaves: Sequence[torch.Tensor], calls: int = 3) -> None:
    """``torch.profiler``'s table of ``calls`` forward+backward calls of ``run``, by self CPU time (where the time
    goes inside one peer)."""
    first_call(run, leaves)
    with torch.profiler.profile() as prof:
        for _ in range(calls):
            first_call(run, leaves)
    print(f"  profile of {calls} forward+backward calls:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def _ratio_line(name: str, times: dict[str, list[float]], base: str) -> str:
    ratio = statistics.median(times[name]) / statistics.median(times[base])
    rounds = [mine / theirs for mine, theirs in zip(times[name], times[base], strict=True)]
    return f"{ratio:5.2f} ({min(rounds):.2f}-{max(rounds):.2f})"


def print_ratios(runners: dict[str, Runner], leaves: Sequence[torch.Tensor], repeat: int, warmup: int) -> None:
    """Time forward+backward and forward-only, interleaved, and print each median over the first runner's."""
    base = next(iter(runners))
    both = interleaved(runners, leaves, repeat, warmup, backward=True)
    forward = interleaved(runners, leaves, repeat, warmup, backward=False)
    print(f"  time / {base} time: median of {repeat} interleaved rounds after {warmup} warm-up (per-round range)")
    print(f"  {'':34} {'forward+backward':>18}   {'forward only':>18}")
    for name in runners:
        print(f"  {name:34} {_ratio_line(name, both, base):>18}   {_ratio_line(name, forward, base):>18}")
    print(f"  (above 1: {base} is faster)")


def run_case(case: Case, repeat: int, warmup: int, compile_: bool, build_seconds: float | None = None) -> None:
    """Print the whole comparison for one case: machine, fdg construction, compile row, ratios."""
    print(case.title)
    print(f"  {describe_machine()}")
    first = first_call(case.runners["fdg"], case.leaves)
    built = f"construction {build_seconds * 1e3:.0f} ms (first in this process), " if build_seconds is not None else ""
    print(f"  fdg: {built}first forward+backward {first * 1e3:.0f} ms")
    for name, run in case.runners.items():
        shape, size = largest_tensor(run, case.leaves)
        print(f"  {name}: largest tensor made in forward+backward {list(shape)}, {size / 1e6:.1f} MB")
    runners = dict(case.runners)
    if compile_:
        compiled = compile_fdg(case)
        if compiled is not None:
            run, backend, seconds = compiled
            print(f"  torch.compile(fdg, fullgraph=True): backend {backend}, first forward+backward {seconds:.1f} s")
            runners = {"fdg": runners.pop("fdg"), f"fdg compiled ({backend})": run, **runners}
    print_ratios({**runners, **case.bounds}, case.leaves, repeat, warmup)


def layer_main(
    doc: str,
    source: str,
    make_case: Callable[..., Case],
    rows: str,
    rows_default: int,
    mul: int,
    lmax: int = 2,
    cue: bool = True,
) -> None:
    """The command line of a one-layer benchmark (``conv.py``, ``node.py``, ...): build, check peers equal, time.
    ``cue``: the case has a cuEquivariance peer (``--no-cue`` leaves it out)."""
    from peers import check_case, has_cue

    import fdg
    import fdg.api  # imported before timing, so that construction below excludes module imports

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{rows}", type=int, default=rows_default)
    parser.add_argument("--mul", type=int, default=mul)
    parser.add_argument("--lmax", type=int, default=lmax)
    add_timing_arguments(parser)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--profile", action="store_true", help="also profile fdg's forward+backward")
    if cue:
        parser.add_argument("--no-cue", action="store_true", help="leave cuEquivariance out")
    args = parser.parse_args()
    with_cue = cue and not args.no_cue
    apply_timing_arguments(args)

    start = time.perf_counter()
    fdg.compile(source, mul=args.mul, lmax=args.lmax)
    built = time.perf_counter() - start
    case = make_case(args.mul, args.lmax, getattr(args, rows), cue=with_cue)
    check_case(case)
    print(f"checked: {', '.join(case.runners)} give the same outputs and input gradients")
    if with_cue and not has_cue():
        print("cuEquivariance not installed (pip install -e '.[bench]'): no cue row")
    run_case(case, args.repeat, args.warmup, compile_=not args.no_compile, build_seconds=built)
    if args.profile:
        print_profile(case.runners["fdg"], case.leaves)
