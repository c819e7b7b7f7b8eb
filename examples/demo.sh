#!/usr/bin/env bash
# `make demo`: what Tether is for, in a few minutes on a 2-core CPU machine (SmolLM2's forward is compiled the first
# time, about 60 s here, then loaded from $TETHER_HOME/compile in about 20 s a start). Every line is real output.
#   examples/demo.sh [PYTHON]     (default .venv/bin/python; the Makefile passes its venv's)
set -euo pipefail
PY=${1:-.venv/bin/python}
TETHER=("$PY" -m tether.cli)
OUT=out/demo
RUNS=$OUT/runs
mkdir -p "$RUNS"

echo "== 1. Scheduling agent programs: a slice of the real Terminal-Bench agent trace (examples/workloads/),"
echo "==    replayed on a SIMULATED H100 (cost model h100-llama3.1-8b, not a measurement), quarter-size tokens and"
echo "==    tool times, 80 programs drawn at two Poisson rates; vllm, lmcache, continuum and tether (online hints)"
"${TETHER[@]}" replay --workload examples/workloads/terminal_bench_slice.jsonl --simulate \
    --token-scale 0.25 --time-scale 0.25 --kv-blocks 1500 --cpu-kv-blocks 1x --draw 80 --seed 0 \
    --sweep 0.4,0.6 --policies vllm,lmcache,continuum,tether --plot "$OUT/jct.png" --json "$OUT/replay.json" --quiet
echo "(simulated) rate against average JCT per policy: $OUT/jct.png"

echo
echo "== 2. A workflow DAG on SmolLM2-135M-Instruct: search, two reads in parallel, an LLM summary, a word count"
RUN_ID="research-demo-$(date +%Y%m%d-%H%M%S)"
"${TETHER[@]}" run examples/research.yaml --model smollm2 --run-id "$RUN_ID" --trace-dir "$RUNS" --json

echo
echo "== 3. The LLMCompiler planner on SmolLM2: one streamed plan, its lookups run in parallel, a joiner answers"
"$PY" examples/planner_agent.py --max-replans 0 --trace-dir "$RUNS"

echo
echo "== 4. The runs just made, in the trace UI"
"${TETHER[@]}" ui --snapshot "$RUN_ID" -o "$OUT/research.html" --trace-dir "$RUNS"
echo "snapshot of the research run: $OUT/research.html"
echo "to browse every run (DAGs, timelines, KV counters): tether ui --trace-dir $RUNS   # http://127.0.0.1:8765"
