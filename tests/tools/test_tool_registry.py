"""``ToolRegistry``: names, duplicates, and loading the tools a module or ``.py`` file defines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tether.tools import ToolRegistry, UnknownToolError, tool
from tether.tools.errors import ToolDefinitionError, ToolLoadError

MODULE = textwrap.dedent(
    '''
    from tether.tools import tool

    @tool
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    @tool(name="half")
    async def halve(x: float) -> float:
        return x / 2

    alias = double
    not_a_tool = 3
    '''
)


@pytest.fixture
def tools_dir(tmp_path: Path) -> Path:
    (tmp_path / "my_tools.py").write_text(MODULE)
    (tmp_path / "empty_tools.py").write_text("X = 1\n")
    (tmp_path / "bad_tools.py").write_text("raise RuntimeError('import failed')\n")
    return tmp_path


def test_register_get_and_names() -> None:
    @tool
    def ping() -> str:
        return "pong"

    reg = ToolRegistry()
    assert reg.register(ping) is ping
    reg.register(ping)  # the same tool again is a no-op
    assert "ping" in reg and "pong" not in reg and reg.names() == ["ping"] and len(reg) == 1
    assert reg.get("ping") is ping
    with pytest.raises(UnknownToolError, match=r"unknown tool 'pong' \(known: ping\)"):
        reg.get("pong")


def test_a_taken_name_is_refused() -> None:
    @tool(name="same")
    def first() -> int:
        return 1

    @tool(name="same")
    def second() -> int:
        return 2

    reg = ToolRegistry([first])
    with pytest.raises(ToolDefinitionError, match="tool name 'same' is taken"):
        reg.register(second)


def test_decorator_registers_when_asked() -> None:
    reg = ToolRegistry()

    @tool(registry=reg)
    def registered() -> int:
        return 1

    assert reg.get("registered") is registered


def test_load_a_file_relative_to_a_base_dir(tools_dir: Path) -> None:
    reg = ToolRegistry()
    loaded = reg.load("my_tools.py", base_dir=tools_dir)
    assert [t.name for t in loaded] == ["double", "half"]
    assert reg.names() == ["double", "half"]
    again = ToolRegistry().load(str(tools_dir / "my_tools.py"))  # same file, same module, same tools
    assert [t.name for t in again] == ["double", "half"] and again[0] is loaded[0]


def test_load_a_module_name_found_beside_the_workflow(tools_dir: Path) -> None:
    reg = ToolRegistry()
    assert [t.name for t in reg.load("my_tools", base_dir=tools_dir)] == ["double", "half"]


def test_load_an_importable_module() -> None:
    reg = ToolRegistry()
    names = [t.name for t in reg.load("tests.tools.test_tool_invoke")]
    assert names == ["broken", "liar", "raises_tool_error", "where_async", "where_sync", "widening"]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("empty_tools.py", "it defines no @tool functions"),
        ("bad_tools.py", "RuntimeError: import failed"),
        ("missing.py", "no such file"),
        ("no_such_module_xyz", "no module named 'no_such_module_xyz'"),
    ],
)
def test_load_errors_name_the_spec(tools_dir: Path, spec: str, reason: str) -> None:
    with pytest.raises(ToolLoadError, match=f"cannot load tools from '{spec}': {reason}"):
        ToolRegistry().load(spec, base_dir=tools_dir)
