"""The C++ paged decode attention for CPU (``cpu_decode.cpp``): built once per machine with the system's C++
compiler, then loaded as the op ``torch.ops.tether_cpu.paged_decode``.

``paged_decode(q [S, Hq, D], k_cache, v_cache [NB, BS, Hkv, D], block_table [S, maxB] int32, kv_lens [S] int32,
scale) -> [S, Hq, D]`` reads each sequence's keys and values in place from its pages (the torch path gathers
them into contiguous copies first), in float32 arithmetic, for float32 or bfloat16 caches.

The shared library is cached under ``$TETHER_HOME/extensions/`` (default ``~/.cache/tether``), keyed by a hash
of the source, the compiler flags, torch's version and the CPU's feature flags, so a later start loads it in
milliseconds. Building
needs ``g++`` (or ``$CXX``) and takes about 8 s on the 2-core machine. ``load()`` is False where it cannot be
built (no compiler, not x86-64 Linux, ``TETHER_CPU_KERNELS=0``): the engine then keeps the torch path, and says
why once in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_decode.cpp")
# -ffast-math vectorises the kernel's reductions and its expf (glibc's libmvec). It is given when compiling only,
# never when linking: linked in, it adds crtfastmath.o, which turns on flush-to-zero for the whole process as the
# library loads (hypothesis's float strategies caught that: tests/kernels/test_cpu_decode.py checks it).
COMPILE_FLAGS = ("-O3", "-march=native", "-fopenmp", "-ffast-math", "-std=c++17", "-fPIC", "-DNDEBUG")
LINK_FLAGS = ("-shared", "-fopenmp")
_lock = threading.Lock()
_state: dict[str, bool] = {}  # "loaded": whether the op is usable (decided once per process)


def _library_path(source: str) -> Path:
    from tether.home import tether_home

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    parts = (
        source,
        " ".join(COMPILE_FLAGS),
        " ".join(LINK_FLAGS),
        torch.__version__,
        str(abi),
        sys.version,
        _cpu_flags(),
    )
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return tether_home() / "extensions" / f"tether_cpu_decode-{key}.so"


def _cpu_flags() -> str:
    """The CPU's feature flags: ``-march=native`` code is only loaded on a CPU that has what it was built for
    (a ``$TETHER_HOME`` shared between machines would otherwise hand one an illegal instruction)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def _build(source: str, target: Path) -> None:
    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler (g++ or $CXX) on PATH")
    includes = [f"-I{p}" for p in cpp_extension.include_paths()]
    libs = [f"-L{p}" for p in cpp_extension.library_paths()]
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "cpu_decode.cpp"
        src.write_text(source)
        obj, out = Path(tmp) / "cpu_decode.o", Path(tmp) / target.name
        compile_cmd = [compiler, *COMPILE_FLAGS, abi, *includes, "-c", str(src), "-o", str(obj)]
        link_cmd = [compiler, *LINK_FLAGS, str(obj), "-o", str(out), *libs, "-lc10", "-ltorch_cpu", "-lmvec"]
        for cmd in (compile_cmd, link_cmd):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"building {SOURCE.name} failed: {done.stderr[-2000:]}")
        os.replace(out, target)  # atomic: a concurrent build of the same source loses nothing


def load() -> bool:
    """Build (once per machine) and load the op; True when ``torch.ops.tether_cpu.paged_decode`` is usable."""
    with _lock:
        if "loaded" in _state:
            return bool(_state["loaded"])
        try:
            if os.environ.get("TETHER_CPU_KERNELS") == "0":
                raise RuntimeError("TETHER_CPU_KERNELS=0")
            if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
                raise RuntimeError(f"built for x86-64 Linux only, not {sys.platform} {platform.machine()}")
            source = SOURCE.read_text()
            path = _library_path(source)
            if not path.exists():
                _build(source, path)
            torch.ops.load_library(str(path))
            _state["loaded"] = True
        except (OSError, RuntimeError) as exc:
            _state["loaded"] = False
            log.warning("C++ paged decode attention unavailable (%s); decode gathers pages with torch", exc)
        return bool(_state["loaded"])


def paged_decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    kv_lens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """See the module docstring; call ``load()`` first."""
    return torch.ops.tether_cpu.paged_decode(q, k_cache, v_cache, block_table, kv_lens, scale)
