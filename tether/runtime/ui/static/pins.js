// A program's pinned band on the timeline, from the engine's KV events (docs/tracing.md, "The UI"): open while
// the program holds pinned blocks on the GPU, as the engine_step counter blocks_pinned counts them.
//   pin_created, prefetched          open (pin_created replaces an open pin; prefetched brings parked blocks back)
//   parked                           close (the blocks move to the CPU tier: no longer GPU-pinned)
//   pin_hit, pin_expired, pin_dropped close
//   unpinned                         close (every other release, with its reason: admitted without a prefix
//                                    match, freed by the policy, nothing pinnable, program_end)
//   the program's next admission     close, for traces recorded before unpinned existed: the engine unpins at
//                                    admission; it cuts a band that no event above closed
//   program_end, else the trace end  close what is still open (marked open when the trace has no program_end)
"use strict";
(function (T) {
  const OPEN = new Set(["pin_created", "prefetched"]);
  const CLOSE = new Set(["pin_hit", "pin_expired", "pin_dropped", "parked", "unpinned"]);
  const MARKERS = new Set(["pin_expired", "pin_dropped", "parked", "swap_preempt", "prefetched"]);

  // When the engine admitted a request (arrival + queued_s: llm_admitted is emitted after its step), or null.
  function admission(r) {
    const a = r.admitted, f = r.finished;
    const queued = a && T.num(a.attrs.queued_s) !== null ? a.attrs.queued_s : f ? T.num(f.attrs.queued_s) : null;
    const from = a || f;
    if (from && queued !== null) return (T.num(from.start) !== null ? from.start : from.ts) + queued;
    return a ? a.ts : null;
  }

  function admissionsByProgram(requests) {
    const out = new Map();
    for (const r of requests.values()) {
      const e = r.admitted || r.finished || r.queued;
      const t = admission(r);
      if (!e || t === null) continue;
      if (!out.has(e.program_id)) out.set(e.program_id, []);
      out.get(e.program_id).push(t);
    }
    for (const list of out.values()) list.sort((a, b) => a - b);
    return out;
  }

  // kv: the trace's kv events in emit order; requests: the model's request map; programs: id -> program.
  // Returns {bands, markers}; a band is {program, start, end, event, opener, endAction, open, key}.
  T.pinBands = function (kv, requests, programs, t1, name) {
    const bands = [], markers = [], open = new Map();
    const close = (pid, ts, action) => {
      const b = open.get(pid);
      if (b) bands.push({ ...b, end: ts, endAction: action, open: false });
      open.delete(pid);
    };
    for (const e of kv) {
      const action = e.attrs.action;
      if (OPEN.has(action)) {
        close(e.program_id, e.ts, action === "pin_created" ? "pin_created" : "prefetched");
        open.set(e.program_id, { program: e.program_id, start: e.ts, event: e, opener: action });
      } else if (CLOSE.has(action)) close(e.program_id, e.ts, action);
      if (MARKERS.has(action)) {
        markers.push({ program: e.program_id, ts: e.ts, action, event: e, key: `kv:${name}:${e.program_id}:${e.ts}:${action}` });
      }
    }
    for (const [pid, b] of open) {
      const p = programs.get(pid);
      const ended = p && p.end !== null;
      bands.push({ ...b, end: ended ? p.end : t1, endAction: ended ? "program_end" : null, open: !ended });
    }
    const admissions = admissionsByProgram(requests);
    for (const b of bands) {
      if (CLOSE.has(b.endAction)) continue;
      const next = (admissions.get(b.program) || []).find((t) => t > b.start && t < b.end);
      if (next !== undefined) Object.assign(b, { end: next, endAction: "admission", open: false });
    }
    const shown = bands.filter((b) => b.end > b.start).sort((a, b) => a.start - b.start);
    for (const b of shown) b.key = `pin:${name}:${b.program}:${b.start}`;
    return { bands: shown, markers };
  };
})(window.Tether);
