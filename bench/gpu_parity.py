"""Two ``make gpu-check`` steps that have no ``tether`` command: greedy parity with transformers, and (dry run
only) a short calibration.

    python bench/gpu_parity.py --device cuda --json out/gpu/parity_smollm2.json
    python bench/gpu_parity.py --device cpu --model tiny --json parity.json   # the dry run: tiny against itself
    python bench/gpu_parity.py --calibrate-dry-run --json calibrate.json      # tiny on CPU, two rounds

Parity: SmolLM2's eight chat prompts (``tests/smollm2.py``), 32 greedy tokens each, batched, on Tether and on
transformers loading the same GGUF file (``tests/runtime/test_smollm2.py``'s helper), both on ``--device``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parity(model: str, device: str, dtype: str) -> dict:
    from tests.runtime.test_smollm2 import GREEDY_32, hf_greedy
    from tests.smollm2 import CHAT_PROMPTS, conversation, transformers_smollm2
    from tether.runtime import LLM

    llm = LLM(model, device=device, dtype=dtype)
    if model == "smollm2":
        outs = llm.chat([conversation(p) for p in CHAT_PROMPTS], GREEDY_32)
        hf = transformers_smollm2().to(device)
        expected = [hf_greedy_on(hf, o.prompt_token_ids, device, hf_greedy) for o in outs]
    else:  # the dry run: no transformers checkpoint for a preset; batched against one at a time
        prompts = [[(7 * i + j) % 250 + 1 for j in range(12 + i)] for i in range(4)]
        outs = llm.generate(prompts, GREEDY_32)
        expected = [list(llm.generate([p], GREEDY_32)[0].outputs[0].token_ids) for p in prompts]
    rows = []
    for out, exp in zip(outs, expected, strict=True):
        got = list(out.outputs[0].token_ids)
        first_diff = next((i for i, (a, b) in enumerate(zip(got, exp)) if a != b), None)
        rows.append({"prompt_tokens": len(out.prompt_token_ids), "equal": got == exp, "first_diff": first_diff})
    return {
        "model": model,
        "device": device,
        "dtype": dtype,
        "against": "transformers generate" if model == "smollm2" else "the same engine, one prompt at a time",
        "new_tokens": GREEDY_32.max_tokens,
        "equal": sum(r["equal"] for r in rows),
        "prompts": len(rows),
        "rows": rows,
    }


def hf_greedy_on(model, prompt_ids, device: str, helper) -> list[int]:
    """``hf_greedy`` with its input on ``device``: the helper builds CPU tensors, so its ``generate`` is
    wrapped to move them."""
    generate = model.generate

    def on_device(ids, **kw):
        kw = {k: v.to(device) if hasattr(v, "to") else v for k, v in kw.items()}
        return generate(ids.to(device), **kw).cpu()

    model.generate = on_device
    try:
        return helper(model, prompt_ids)
    finally:
        model.generate = generate


def calibrate_dry_run(out: str) -> None:
    """``tether calibrate`` in small: the tiny preset on CPU, two rounds of steps; the same cost-model JSON."""
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.sim.calibrate import fit, measure_steps

    config = EngineConfig(model="tiny", device="cpu", dtype="float32", num_kv_blocks=512)
    samples = measure_steps(config, seed=0, rounds=2)
    model = fit(samples, "tiny-cpu-dry-run", f"bench/gpu_parity.py --calibrate-dry-run ({len(samples)} steps)")
    model.to_json(out)
    print(f"{model}\n{len(samples)} steps; written to {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--calibrate-dry-run", action="store_true")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    if args.calibrate_dry_run:
        calibrate_dry_run(args.json)
        return 0
    start = time.perf_counter()
    doc = parity(args.model, args.device, args.dtype)
    doc["seconds"] = round(time.perf_counter() - start, 2)
    Path(args.json).write_text(json.dumps(doc, indent=2))
    print(json.dumps({k: v for k, v in doc.items() if k != "rows"}))
    return 0 if doc["equal"] == doc["prompts"] else 1


if __name__ == "__main__":
    sys.exit(main())
