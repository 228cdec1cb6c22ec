"""A module on the native kernel, compiled ahead of time by AOTInductor, runs in a process where fdg cannot be
imported: loading the op library (``fdg.runtime.native.library()``, registered in C++) is all it needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fdg
from fdg.runtime import native
from fdg.runtime.channelwise_op import load

pytestmark = pytest.mark.skipif(not load(), reason=native.status())

MESSAGE = """
diagram Message() {
    input h : 3x0e + 3x1o + 3x2e over node
    input src : index edge -> node
    input dst : index edge -> node
    input vec : 1o over edge
    input R : weights over edge
    output y = sum(couple(h[src], sh(vec, 2)) -> 3x0e + 3x1o + 3x2e [mode = uvu, weights = R], by = dst)
}
"""

# fdg is made unimportable before anything else happens
_RUN = """
import sys
sys.modules["fdg"] = None
import torch
torch.ops.load_library(sys.argv[1])
package = torch._inductor.aoti_load_package(sys.argv[2])
inputs, want = torch.load(sys.argv[3])
got = package(**inputs)
print((got - want).abs().max().item() / want.abs().max().item())
"""


def test_an_aoti_package_runs_with_only_the_op_library(tmp_path: Path) -> None:
    module = fdg.compile(MESSAGE).double()
    g = torch.Generator().manual_seed(3)
    nodes, edges = 6, 20
    inputs = {
        "h": torch.randn(nodes, 27, generator=g, dtype=torch.float64),
        "src": torch.randint(0, nodes, (edges,), generator=g),
        "dst": torch.randint(0, nodes, (edges,), generator=g),
        "vec": torch.randn(edges, 3, generator=g, dtype=torch.float64),
        "R": torch.randn(edges, module.weight_numel["R"], generator=g, dtype=torch.float64),
    }
    want = module(**inputs)
    exported = torch.export.export(module, (), inputs)
    assert any("fdg.channelwise" in str(node.target) for node in exported.graph.nodes)  # the kernel, not a fallback
    package = torch._inductor.aoti_compile_and_package(exported, package_path=str(tmp_path / "message.pt2"))
    torch.save((inputs, want), tmp_path / "io.pt")
    args = [str(native.library()), package, str(tmp_path / "io.pt")]
    run = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout) < 1e-12
