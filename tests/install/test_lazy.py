"""``tether._lazy.lazy_exports``: the PEP 562 re-exports of ``tether``, ``tether.runtime``, ``tether.agents``,
``tether.kernels`` and ``tether.tools.mqtt`` (imported on first use, cached, listed by ``dir``). Importing a
package stays light: no torch, numpy, triton or amqtt (``tether.kernels`` needs torch for its contract, not
triton)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from tether._lazy import lazy_exports

LAZY_PACKAGES = ("tether", "tether.runtime", "tether.agents", "tether.kernels", "tether.tools.mqtt")


@pytest.fixture
def package(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A fresh module ``lazy_pkg`` re-exporting ``dumps`` from ``json`` and ``sqrt`` from ``math``."""
    module = types.ModuleType("lazy_pkg")
    module.__getattr__, module.__dir__ = lazy_exports("lazy_pkg", {"dumps": "json", "sqrt": "math"})  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "lazy_pkg", module)
    return module


def test_a_name_is_imported_on_first_use_and_then_cached(package: types.ModuleType) -> None:
    import json

    assert "dumps" not in vars(package)
    assert package.dumps is json.dumps
    assert vars(package)["dumps"] is json.dumps  # the next access is a plain attribute


def test_an_unknown_name_raises_attribute_error_naming_the_module(package: types.ModuleType) -> None:
    with pytest.raises(AttributeError, match=r"^module 'lazy_pkg' has no attribute 'loads'$"):
        package.loads  # noqa: B018
    assert not hasattr(package, "nope")


def test_dir_lists_globals_and_every_export(package: types.ModuleType) -> None:
    package.own = 1
    assert dir(package) == sorted({*vars(package), "dumps", "sqrt"})
    assert {"dumps", "sqrt", "own"} <= set(dir(package))


def test_an_import_error_of_the_target_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("broken_pkg")
    module.__getattr__, _ = lazy_exports("broken_pkg", {"thing": "tether_no_such_module_here"})  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "broken_pkg", module)
    with pytest.raises(ModuleNotFoundError, match="tether_no_such_module_here"):
        module.thing  # noqa: B018


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_each_package_keeps_its_error_message_and_lists_its_exports(name: str) -> None:
    module = __import__(name, fromlist=["_"])
    with pytest.raises(AttributeError, match=rf"^module '{name}' has no attribute 'no_such_name'$"):
        module.no_such_name  # noqa: B018
    assert set(module.__all__) <= set(dir(module))


def test_the_packages_resolve_their_exports() -> None:
    import tether
    import tether.agents
    import tether.runtime
    import tether.tools.mqtt
    from tether.runtime.engine.sampling_params import SamplingParams
    from tether.tools.tool import tool

    assert tether.tool is tool
    assert tether.runtime.SamplingParams is SamplingParams
    assert tether.agents.parse_plan is not None
    assert tether.tools.mqtt.MosquittoBroker.__name__ == "MosquittoBroker"


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_importing_a_package_stays_light(name: str) -> None:
    heavy = {"triton", "amqtt"} if name == "tether.kernels" else {"torch", "numpy", "triton", "amqtt"}
    code = f"import sys, {name}; bad = {heavy!r} & set(sys.modules); assert not bad, bad"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
