"""The screenshots in docs/tracing.md, from real recordings: a simulated ``tether replay`` of Terminal-Bench
programs, and a ``tether serve --model smollm2`` run driven by ``examples/openai_client.py`` (one program whose
tool call leaves a pin), each opened in ``tether ui`` in headless Chromium; the serve run's timeline is zoomed
with the mouse wheel onto the pin until it is 60 px wide.

    .venv/bin/python dev/ui_screenshots.py            # writes docs/images/ui-replay.png, ui-serve-pin.png
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
WORKLOAD = ROOT / "examples" / "workloads" / "terminal_bench_slice.jsonl"
TIMEOUT_MS = 30_000
WINDOW_JS = "s => s.dataset.lo + ',' + s.dataset.hi"


def tether(*args: str) -> list[str]:
    return [sys.executable, "-m", "tether.cli", *args]


def wait_for(url: str, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url}: not up after {timeout_s:.0f} s")


def record(runs: Path) -> None:
    """A simulated replay of 80 programs drawn from the 40 of the slice under three policies (as in ``make
    demo``), then a serve run driven by the openai example."""
    replay = ["replay", "--workload", str(WORKLOAD), "--simulate", "--policies", "vllm,continuum,tether"]
    replay += [
        "--token-scale",
        "0.25",
        "--time-scale",
        "0.25",
        "--kv-blocks",
        "1500",
        "--cpu-kv-blocks",
        "1x",
    ]
    replay += ["--draw", "80", "--seed", "0", "--rate", "0.6", "--quiet", "--trace"]
    subprocess.run(tether(*replay, "--trace-dir", str(runs)), cwd=ROOT, check=True)
    serve = tether("serve", "--model", "smollm2", "--port", "8431", "--trace-dir", str(runs))
    proc = subprocess.Popen(serve, cwd=ROOT)
    try:
        wait_for("http://127.0.0.1:8431/v1/models", proc)
        client = [sys.executable, "examples/openai_client.py", "--base-url", "http://127.0.0.1:8431/v1"]
        subprocess.run(client, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    finally:
        proc.send_signal(signal.SIGTERM)  # drains, then closes the run as ok
        proc.wait(timeout=60)


def run_ids(runs: Path) -> dict[str, str]:
    """The newest run id of each kind (``replay``, ``serve``)."""
    import json

    ids: dict[str, str] = {}
    for meta in sorted(runs.glob("*/run.json"), key=lambda p: p.stat().st_mtime):
        ids[json.loads(meta.read_text())["kind"]] = meta.parent.name
    return ids


def zoom_onto_pin(page) -> None:
    pin = page.locator('#timeline [data-kind="pin"]').first
    for _ in range(40):
        box = pin.bounding_box()
        if box["width"] >= 60:
            return
        shown = page.locator("#gantt svg").evaluate(WINDOW_JS)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -300)
        page.wait_for_function(
            f"w => ({WINDOW_JS})(document.querySelector('#gantt svg')) !== w", arg=shown, timeout=TIMEOUT_MS
        )
    raise SystemExit("the pin never reached 60 px")


def shoot(runs: Path) -> None:
    from playwright.sync_api import sync_playwright

    ids = run_ids(runs)
    ui = subprocess.Popen(tether("ui", "--trace-dir", str(runs), "--port", "8432"), cwd=ROOT)
    try:
        wait_for("http://127.0.0.1:8432/", ui)
        with sync_playwright() as p:
            chromium = shutil.which("chromium") or "/usr/bin/chromium"
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            for kind, name in (("replay", "ui-replay.png"), ("serve", "ui-serve-pin.png")):
                page.goto(f"http://127.0.0.1:8432/#/runs/{ids[kind]}")
                page.wait_for_function("document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)
                if kind == "serve":
                    zoom_onto_pin(page)
                    page.locator('#timeline [data-kind="pin"]').first.click()
                page.screenshot(path=str(OUT / name), full_page=kind == "serve")
                print(f"wrote {OUT / name}")
            browser.close()
    finally:
        ui.terminate()
        ui.wait(timeout=30)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tether-shots-") as tmp:
        runs = Path(tmp)
        record(runs)
        shoot(runs)


if __name__ == "__main__":
    main()
