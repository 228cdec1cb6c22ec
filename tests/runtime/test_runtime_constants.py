"""Constant tables first built while torch.export traces stay real tensors (fdg.runtime.constants)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a fresh process, so that no table exists before the export: every one is first built under fake tensors
PROBE = """
import torch, fdg
from module_inputs import random_inputs
for path, name in [("diagrams/nequip.fdg", None), ("diagrams/mace.fdg", None), ("diagrams/fusion.fdg", None)]:
    module = fdg.compile(path, name, mul=4)
    x = random_inputs(module, torch.float32)
    exported = torch.export.export(module, (), x).module()
    outs = [module(**x), fdg.compile(path, name, mul=4)(**x), exported(**x)]
    for out in outs:
        for t in (out if isinstance(out, tuple) else (out,)):
            assert type(t) is torch.Tensor, (path, type(t))
    torch.testing.assert_close(outs[2], outs[0])
print("ok")
"""


def test_export_before_any_eager_call_leaves_eager_calls_real() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
