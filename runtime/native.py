"""fdg's native CPU kernels: a torch C++ extension, compiled on first use with the machine's C++ compiler and cached.

The kernel (``csrc/channelwise.cpp``) works on raw arrays; ``csrc/ops.cpp`` registers it with torch as the ops
``fdg::channelwise`` and ``fdg::channelwise_grads`` (``TORCH_LIBRARY``), which check their operands and raise
Python's usual errors.  Building takes about half a minute on 2 cores (torch's headers), once per machine and
torch; the library is cached under ``$FDG_CACHE_DIR`` (default ``~/.cache/fdg``), keyed by the sources, the
compiler, its flags, torch and the CPU (it is built with ``-march=native``), so a home directory shared by different
machines stays safe.  The library needs torch but not fdg: ``torch.ops.load_library(native.library())`` is all a
process running an exported or AOTInductor-compiled model needs (``docs/performance.md``).

When no compiler is found, or ``FDG_NATIVE=0`` is set, :func:`library` returns ``None`` and generated modules take
their pure-torch lowering instead (same numbers, slower); :func:`status` says which and why.

``make`` builds the library right after installing (``python -c "from fdg.runtime import native;
print(native.status())"``), so that the first call in a fresh environment does not pay for the compilation.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils import cpp_extension

CSRC = Path(__file__).with_name("csrc")
#: the translation units: the kernel, and the ops registering it with torch
UNITS = (CSRC / "channelwise.cpp", CSRC / "table.cpp", CSRC / "ops.cpp")
#: every file the build reads (the units and the headers they include), all part of the cache key
SOURCES = (*UNITS, CSRC / "channelwise.h", CSRC / "lanes.h", CSRC / "table.h")
FLAGS = ("-O3", "-march=native", "-std=c++20", "-shared", "-fPIC", "-pthread")


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _cpu() -> str:
    """The CPU's model and feature flags (``-march=native`` code is only valid on such a CPU)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [line for line in lines if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(keep))


def _cache_dir() -> Path:
    root = os.environ.get("FDG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fdg"
    )
    return Path(root)


def _torch_flags() -> list[str]:
    """What building against this process's torch takes: its headers, its ABI, and its libraries (found again at
    load time through the run path)."""
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    libraries = cpp_extension.library_paths()
    return [
        abi,
        *(f"-I{path}" for path in cpp_extension.include_paths()),
        *(f"-L{path}" for path in libraries),
        *(f"-Wl,-rpath,{path}" for path in libraries),
        "-lc10",
        "-ltorch_cpu",
    ]


def _build(compiler: str) -> Path:
    """The cached library, compiled first if needed; without ``-march=native`` where the compiler refuses it."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    portable = tuple(flag for flag in FLAGS if flag != "-march=native")
    linked = _torch_flags()
    for flags in (FLAGS, portable):
        texts = [path.read_text() for path in SOURCES]
        stamp = [compiler, version, *flags, *linked, torch.__version__, _cpu()]
        key = hashlib.sha256("\0".join([*texts, *stamp]).encode()).hexdigest()
        target = _cache_dir() / f"fdg_native_{key[:16]}.so"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            partial = Path(work) / target.name
            command = [compiler, *flags, *map(str, UNITS), "-o", str(partial), *linked]
            built = subprocess.run(command, capture_output=True, text=True)
            if built.returncode == 0:
                os.replace(partial, target)  # atomic: concurrent processes (torchrun) may build at once
                return target
    raise subprocess.CalledProcessError(built.returncode, built.args, built.stdout, built.stderr)


@functools.cache
def _load() -> tuple[Path | None, str]:
    """Build and load the library once per process: its ops are then registered with torch."""
    if os.environ.get("FDG_NATIVE", "1") == "0":
        return None, "disabled by FDG_NATIVE=0"
    if sys.platform == "win32":
        return None, "not built on Windows"
    compiler = _compiler()
    if compiler is None:
        return None, "no C++ compiler found (set CXX)"
    try:
        path = _build(compiler)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        return None, f"compiling the native kernels with {compiler} failed: {detail.strip()[-500:]}"
    torch.ops.load_library(str(path))
    return path, f"built with {compiler} at {path}"


def library() -> Path | None:
    """The loaded op library (its ops are registered with torch), or ``None`` where it cannot be built (see
    :func:`status`)."""
    return _load()[0]


def status() -> str:
    """Whether the native kernels are in use, and why not."""
    path, why = _load()
    return ("native kernels: " if path is not None else "native kernels unavailable: ") + why
