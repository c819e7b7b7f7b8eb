// The view model of one trace (docs/tracing.md, "Events"): programs and their DAG nodes, the timeline's
// spans (one per llm_turn / tool_call, one per engine request no llm_turn names: open-ended to the trace's end
// when it has no llm_finished yet), the model loads, pinned bands and KV markers (pins.js), the engine's
// counters and each program's JCT. Rebuilt from all events on every change.
"use strict";
(function (T) {
  const NODE_END = { node_end: "ok", node_error: "error", node_cancelled: "cancelled", node_skipped: "skipped" };
  const ENDED = { ok: 1, error: 1, cancelled: 1, skipped: 1 }; // a node_start read after its end changes nothing
  const REQUEST_EVENT = {
    llm_queued: "queued", llm_admitted: "admitted", llm_first_token: "first", llm_finished: "finished",
  };

  const begin = (e) => (T.num(e.start) !== null ? e.start : e.ts);
  function spanStart(e) {
    if (T.num(e.start) !== null) return e.start;
    const d = T.num((e.attrs || {}).duration_s);
    return d === null ? e.ts : e.ts - d;
  }

  function newProgram(id) {
    return {
      id, name: id, engine: id === T.ENGINE, nodes: new Map(), first: Infinity, last: -Infinity,
      start: null, end: null, status: null, startEvent: null, endEvent: null, hasDag: false, lanes: 1,
      spans: [], bands: [], markers: [],
    };
  }

  function ensureNode(p, id, doc) {
    let n = p.nodes.get(id);
    if (!n) {
      n = { id, program: p.id, kind: null, tool: null, deps: [], status: "pending", turns: [], tools: [],
        started: null, ended: null, startEvent: null, endEvent: null };
      p.nodes.set(id, n);
    }
    if (doc) {
      if (doc.kind) n.kind = doc.kind;
      if (doc.tool) n.tool = doc.tool;
      if (Array.isArray(doc.deps)) n.deps = doc.deps.map(String);
    }
    return n;
  }

  // queued: arrival → admission (arrival + queued_s: llm_admitted is emitted after its step, not at
  // admission), prefill: admission → first token, decode: first token → finish.
  function phases(r, start, end) {
    if (!r) return [];
    const fin = r.finished ? r.finished.attrs || {} : {};
    const arrival = r.admitted ? begin(r.admitted) : r.finished ? begin(r.finished) : r.queued ? r.queued.ts : start;
    const queued = r.admitted && T.num(r.admitted.attrs.queued_s) !== null ? r.admitted.attrs.queued_s : T.num(fin.queued_s);
    const admitted = queued !== null ? arrival + queued : r.admitted ? r.admitted.ts : null;
    if (admitted === null) return !r.finished && end > arrival ? [{ phase: "queued", start: arrival, end }] : [];
    let first = r.first ? r.first.ts : null;
    if (first === null && T.num(fin.ttft_s) !== null) first = arrival + fin.ttft_s;
    const finish = r.finished ? r.finished.ts : end;
    const out = [["queued", arrival, admitted]];
    if (first !== null) out.push(["prefill", admitted, first], ["decode", first, finish]);
    else out.push(["prefill", admitted, finish]);
    return out.filter(([, a, b]) => b > a).map(([phase, a, b]) => ({ phase, start: a, end: b }));
  }

  function assignLanes(spans) {
    const ends = [];
    for (const s of [...spans].sort((a, b) => a.start - b.start || a.end - b.end)) {
      let lane = ends.findIndex((end) => end <= s.start + 1e-9);
      if (lane < 0) lane = ends.push(-Infinity) - 1;
      ends[lane] = Math.max(s.end, s.start);
      s.lane = lane;
    }
    return Math.max(1, ends.length);
  }

  T.buildTrace = function (events, name) {
    const programs = new Map();
    const requests = new Map();
    const turns = [], tools = [], kv = [], steps = [], loads = [];
    let t0 = Infinity, t1 = -Infinity;
    const program = (id) => programs.get(id) || programs.set(id, newProgram(id)).get(id);

    for (const e of events) {
      const a = e.attrs || (e.attrs = {});
      t0 = Math.min(t0, begin(e));
      t1 = Math.max(t1, e.ts);
      const p = program(e.program_id);
      p.first = Math.min(p.first, begin(e));
      p.last = Math.max(p.last, e.ts);
      const nodeId = e.node_id === null || e.node_id === undefined ? null : String(e.node_id);
      switch (e.kind) {
        case "program_start":
          p.name = a.program || p.id;
          p.start = e.ts;
          p.startEvent = e;
          if (Array.isArray(a.nodes)) {
            p.hasDag = true;
            for (const d of a.nodes) if (d && d.id !== undefined) ensureNode(p, String(d.id), d);
          }
          break;
        case "node_added":
          if (a.node && a.node.id !== undefined) {
            p.hasDag = true;
            ensureNode(p, String(a.node.id), a.node);
          }
          break;
        case "node_start":
          if (nodeId !== null) {
            const n = ensureNode(p, nodeId, { kind: a.node_kind, deps: a.deps });
            if (!(n.status in ENDED)) n.status = "running";
            n.started = e.ts;
            n.startEvent = e;
            p.hasDag = true;
          }
          break;
        case "node_end":
        case "node_error":
        case "node_cancelled":
        case "node_skipped":
          if (nodeId !== null) {
            const n = ensureNode(p, nodeId);
            n.status = NODE_END[e.kind];
            n.ended = e.ts;
            n.endEvent = e;
            if (n.started === null && e.kind !== "node_skipped") n.started = spanStart(e);
          }
          break;
        case "program_end":
          p.end = e.ts;
          p.status = a.status || "ok";
          p.endEvent = e;
          break;
        case "llm_turn":
          turns.push(e);
          if (nodeId !== null) {
            const n = ensureNode(p, nodeId);
            if (!n.kind) n.kind = "llm";
            n.turns.push(e);
          }
          break;
        case "tool_call":
          tools.push(e);
          if (nodeId !== null) {
            const n = ensureNode(p, nodeId);
            if (!n.kind) n.kind = "tool";
            if (!n.tool) n.tool = a["gen_ai.tool.name"] || a.tool || null;
            n.tools.push(e);
          }
          break;
        case "kv":
          kv.push(e);
          break;
        case "engine_step":
          steps.push(e);
          break;
        case "model_load":
          loads.push(e);
          break;
        default: {
          const rid = a.request_id !== undefined && a.request_id !== null ? a.request_id : nodeId;
          if (rid === null || !(e.kind in REQUEST_EVENT || e.kind === "llm_prefill")) break;
          const key = String(rid);
          const r = requests.get(key) || requests.set(key, { id: key, prefills: [] }).get(key);
          if (e.kind === "llm_prefill") r.prefills.push(e);
          else if (!r[REQUEST_EVENT[e.kind]]) r[REQUEST_EVENT[e.kind]] = e;
        }
      }
    }
    if (!isFinite(t0)) { t0 = 0; t1 = 0; }
    if (t1 <= t0) t1 = t0 + 1e-3;

    const spans = [];
    const named = new Set();
    for (const e of turns) {
      const rid = e.attrs.request_id;
      if (rid !== undefined && rid !== null) named.add(String(rid));
      const r = rid === undefined || rid === null ? null : requests.get(String(rid));
      const start = spanStart(e);
      spans.push({ kind: "llm", source: "executor", event: e, request: r || null, start, end: e.ts,
        phases: phases(r, start, e.ts) });
    }
    for (const r of requests.values()) {
      if (named.has(r.id)) continue;
      if (r.finished) {
        const start = spanStart(r.finished);
        spans.push({ kind: "llm", source: "engine", event: r.finished, request: r, start, end: r.finished.ts,
          phases: phases(r, start, r.finished.ts) });
      } else if (r.admitted || r.queued) {  // no llm_finished (yet): open to the trace's end
        const event = r.admitted || r.queued, start = Math.min(begin(event), t1);
        spans.push({ kind: "llm", source: "engine", event, request: r, start, end: t1, open: true,
          phases: phases(r, start, t1) });
      }
    }
    for (const e of tools) spans.push({ kind: "tool", source: "executor", event: e, start: spanStart(e), end: e.ts });
    for (const s of spans) {
      s.program = s.event.program_id;
      s.node = s.event.node_id;
      s.status = s.event.attrs.status || null;
      s.key = `span:${name}:${s.event.kind}:${s.program}:${s.node}:${s.event.ts}`;
    }

    const { bands, markers } = T.pinBands(kv, requests, programs, t1, name);
    const modelLoads = loads.map((e) => ({ kind: "load", source: "engine", event: e, program: e.program_id,
      node: null, status: null, start: spanStart(e), end: e.ts, lane: 0,
      key: `load:${name}:${e.ts}:${e.attrs.model}` }));
    assignLanes(modelLoads);

    for (const s of spans) program(s.program).spans.push(s);
    for (const b of bands) program(b.program).bands.push(b);
    for (const m of markers) program(m.program).markers.push(m);
    for (const p of programs.values()) {
      p.lanes = assignLanes(p.spans);
      p.jct = p.endEvent
        ? T.num(p.endEvent.attrs.duration_s) !== null ? p.endEvent.attrs.duration_s : p.endEvent.ts - begin(p.endEvent)
        : p.last - p.first;
    }
    const ordered = [...programs.values()].sort((a, b) => a.first - b.first);
    return {
      name, t0, t1, programs: ordered, programMap: programs, spans, bands, markers, requests, modelLoads,
      steps: steps.map((e) => ({ t: e.ts, ...e.attrs })),
      counts: { llm_turn: turns.length, tool_call: tools.length, program_start: ordered.filter((p) => p.startEvent).length },
      jct: ordered.filter((p) => !p.engine).map((p) => p.jct),
      totals: totals(turns, requests, ordered),
    };
  };

  // The run list's rules (tether/runtime/ui/summary.py): llm_turn usage, else llm_finished's in a trace without any.
  function totals(turns, requests, programs) {
    const keys = turns.length
      ? ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens"]
      : ["input_tokens", "output_tokens", "cached_tokens"];
    const source = turns.length ? turns : [...requests.values()].filter((r) => r.finished).map((r) => r.finished);
    const sum = (k) => source.reduce((acc, e) => acc + (T.num(e.attrs[k]) || 0), 0);
    const [input, output, cached] = keys.map(sum);
    const starts = programs.filter((p) => p.startEvent).length;
    return {
      programs: starts || programs.filter((p) => !p.engine).length,
      input_tokens: input, output_tokens: output, cache_read_tokens: cached,
      cache_hit_rate: input ? cached / input : null,
    };
  }

  T.nodeTokens = function (n) {
    const keys = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens"];
    const out = {};
    for (const k of keys) out[k] = n.turns.reduce((acc, e) => acc + (T.num(e.attrs[k]) || 0), 0);
    return out;
  };
})(window.Tether);
