"""fdg's native CPU kernels: one small C++ file, compiled on first use with the machine's C++ compiler and cached.

The kernels have no dependency but the C++ standard library (no torch headers), so compiling takes 1.5–2.5 s, once
per machine; they are loaded with ``ctypes``, which releases the GIL during the call.  The shared library is
cached under ``$FDG_CACHE_DIR`` (default ``~/.cache/fdg``), keyed by the source, the compiler, its flags and the CPU
(it is built with ``-march=native``), so a home directory shared by different machines stays safe.

When no compiler is found, or ``FDG_NATIVE=0`` is set, :func:`library` returns ``None`` and generated modules take
their pure-torch lowering instead (same numbers, slower); :func:`status` says which and why.

``make`` builds the library right after installing (``python -c "from fdg.runtime import native;
print(native.status())"``), so that the first call in a fresh environment does not pay for the compilation.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("csrc") / "channelwise.cpp"
#: every file the build reads (the source and the headers it includes), all part of the cache key
SOURCES = (SOURCE, SOURCE.with_name("lanes.h"))
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-pthread")


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


def _build(compiler: str) -> Path:
    """The cached library, compiled first if needed; without ``-march=native`` where the compiler refuses it."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    portable = tuple(flag for flag in FLAGS if flag != "-march=native")
    for flags in (FLAGS, portable):
        texts = [path.read_text() for path in SOURCES]
        key = hashlib.sha256("\0".join([*texts, compiler, version, *flags, _cpu()]).encode()).hexdigest()
        target = _cache_dir() / f"fdg_native_{key[:16]}.so"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            partial = Path(work) / target.name
            built = subprocess.run([compiler, *flags, str(SOURCE), "-o", str(partial)], capture_output=True, text=True)
            if built.returncode == 0:
                os.replace(partial, target)  # atomic: concurrent processes (torchrun) may build at once
                return target
    raise subprocess.CalledProcessError(built.returncode, built.args, built.stdout, built.stderr)


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
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
        return None, f"compiling {SOURCE.name} with {compiler} failed: {detail.strip()[:500]}"
    lib = ctypes.CDLL(str(path))
    for name, real in (("fdg_channelwise_f32", ctypes.c_float), ("fdg_channelwise_f64", ctypes.c_double)):
        fn = getattr(lib, name)
        pointer = ctypes.POINTER(real)
        fn.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            *[pointer] * 7,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
        ]
        fn.restype = ctypes.c_int64
    return lib, f"built with {compiler} at {path}"


def library() -> ctypes.CDLL | None:
    """The loaded kernels, or ``None`` where they cannot be built (see :func:`status`)."""
    return _load()[0]


def status() -> str:
    """Whether the native kernels are in use, and why not."""
    lib, why = _load()
    return ("native kernels: " if lib is not None else "native kernels unavailable: ") + why
