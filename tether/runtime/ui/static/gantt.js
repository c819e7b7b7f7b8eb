// The timeline as SVG: one row per program (or per program and policy when comparing), spans in greedy
// lanes, LLM bars split into queued / prefill / decode, the pinned band above the lanes and KV markers, and a
// row for the model loads. It draws the view window [lo, hi] (seconds from the row's origin; default the
// whole extent): what lies outside is left out, bars are cut at the window's edges and are never narrower
// than MIN_BAR_W px (their hover text has the real duration). An unfinished request's bar is open-ended: it
// reaches the trace's end, with a dashed end.
// Every LLM bar is one <g data-kind="llm">, every tool bar one <g data-kind="tool">, every model load one
// <g data-kind="model_load">, every marker one <g data-kind="kv">, every band one <rect data-kind="pin">
// (with hooks off, as in the comparison, the same value goes in data-cmp instead).
"use strict";
(function (T) {
  T.LABEL_W = 240;  // a row label's 40 characters at 11 px (no label is cut below 40)
  T.PLOT_PAD = 14;
  T.MIN_BAR_W = 3;
  const LANE_H = 16, LANE_GAP = 3, BAND_H = 6, ROW_PAD = 5, AXIS_H = 24, MIN_BAND_W = 2;

  T.plotWidth = (width) => Math.max(200, width - T.LABEL_W - T.PLOT_PAD);

  // Ticks inside [lo, hi] at a 1/2/5 step giving about `count` of them.
  T.rangeTicks = function (lo, hi, count) {
    const span = hi - lo;
    if (!(span > 0)) return { step: 0, values: [lo] };
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const values = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) values.push(+v.toPrecision(12));
    return { step, values };
  };

  function tickLabel(v, step) {
    if (step >= 1 || v === 0) return T.fmtSeconds(v);
    return `${v.toFixed(Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))))} s`;
  }

  // The x axis of the window: {x(t) for seconds from the origin, lo, hi, left, right}.
  T.timeScale = function (view, plotW) {
    const left = T.LABEL_W, right = T.LABEL_W + plotW, span = Math.max(1e-12, view.hi - view.lo);
    return { lo: view.lo, hi: view.hi, left, right, x: (t) => left + ((t - view.lo) / span) * plotW };
  };

  T.timeAxis = function (svg, scale, top, bottom) {
    const { step, values } = T.rangeTicks(scale.lo, scale.hi, Math.max(2, Math.floor((scale.right - scale.left) / 90)));
    for (const v of values) {
      const x = scale.x(v);
      const anchor = x > scale.right - 24 ? "end" : x < scale.left + 24 ? "start" : "middle";
      svg.append(T.s("line", { class: "grid", x1: x, x2: x, y1: top, y2: bottom }),
        T.s("text", { class: "tick", x, y: top - 6, "text-anchor": anchor, text: tickLabel(v, step) }));
    }
  };

  // [x1, x2] of [a, b] (seconds from the origin) cut to the window, at least `min` px wide; null outside it.
  function clip(scale, a, b, min) {
    if (b < scale.lo || a > scale.hi) return null;
    let x1 = Math.max(scale.left, scale.x(a));
    const x2 = Math.min(scale.right, scale.x(b));
    if (x2 - x1 < min) x1 = Math.max(scale.left, Math.min(x1, scale.right - min));
    return [x1, Math.max(x2, x1 + min)];
  }

  function spanTitle(s) {
    const a = s.event.attrs;
    if (s.kind === "load") {
      const what = [a.model, a.device, a.dtype, a.compiled ? "compiled" : a.compiled === false ? "eager" : null];
      return [`model load · ${what.filter((v) => v !== null && v !== undefined).join(" · ")}`,
        `duration ${T.fmtSeconds(s.end - s.start)}`].join("\n");
    }
    const what = s.kind === "tool" ? `tool ${a["gen_ai.tool.name"] || a.tool || ""}` : `llm ${s.source === "engine" ? "request" : "turn"}`;
    const parts = [`${what} · ${s.node ?? ""}${s.open ? " (unfinished)" : ""}`,
      `duration ${T.fmtSeconds(s.end - s.start)}${s.open ? " so far" : ""}`];
    for (const ph of s.phases || []) parts.push(`${ph.phase} ${T.fmtSeconds(ph.end - ph.start)}`);
    if (s.status) parts.push(`status ${s.status}`);
    return parts.join("\n");
  }

  function hook(kind, hooks) {
    return hooks ? { "data-kind": kind } : { "data-cmp": kind };
  }

  function spanBar(s, rel, scale, top, hooks) {
    const span = clip(scale, rel(s.start), rel(s.end), T.MIN_BAR_W);
    if (!span) return null;
    const [x1, x2] = span;
    const kind = s.kind === "load" ? "model_load" : s.kind;
    const cls = `bar ${s.kind} source-${s.source}${s.status && s.status !== "ok" ? " failed" : ""}${s.open ? " open" : ""}`;
    const bar = T.s("g", { class: cls, ...hook(kind, hooks), "data-key": s.key, "data-node": s.node,
      "data-request": s.event.attrs.request_id, "data-open": s.open ? "true" : null,
      "data-start": rel(s.start), "data-end": rel(s.end) },
    T.s("title", { text: spanTitle(s) }),
    T.s("rect", { class: "bar-base", x: x1, y: top, width: x2 - x1, height: LANE_H, rx: 2 }));
    for (const ph of s.phases || []) {
      const p = clip(scale, rel(ph.start), rel(ph.end), 1);
      if (p) bar.append(T.s("rect", { class: `phase ${ph.phase}`, "data-phase": ph.phase, x: p[0], y: top + 2, width: p[1] - p[0], height: LANE_H - 4 }));
    }
    if (s.open && scale.x(rel(s.end)) <= scale.right + 0.5) {
      bar.append(T.s("line", { class: "open-end", x1: x2, x2, y1: top - 2, y2: top + LANE_H + 2 }));
    }
    return bar;
  }

  function band(b, rel, scale, hooks) {
    const span = clip(scale, rel(b.start), rel(b.end), MIN_BAND_W);
    if (!span) return null;
    const ended = b.endAction ? ` → ${b.endAction}` : " (open)";
    return T.s("rect", { class: "pin-band", ...hook("pin", hooks), "data-key": b.key, "data-start": rel(b.start),
      "data-end": rel(b.end), x: span[0], y: ROW_PAD, width: span[1] - span[0], height: BAND_H },
    T.s("title", { text: `pinned ${T.fmtSeconds(b.end - b.start)}${b.opener === "prefetched" ? " (prefetched)" : ""}${ended}` }));
  }

  function marker(m, rel, scale, hooks) {
    const t = rel(m.ts);
    if (t < scale.lo || t > scale.hi) return null;
    const mx = scale.x(t);
    return T.s("g", { class: `marker ${m.action}`, ...hook("kv", hooks), "data-action": m.action, "data-key": m.key },
      T.s("title", { text: `${m.action} · ${T.fmtInt(m.event.attrs.blocks)} blocks` }),
      T.s("path", { d: `M${mx - 5},${ROW_PAD - 3} L${mx + 5},${ROW_PAD - 3} L${mx},${ROW_PAD + BAND_H + 2} z` }));
  }

  function rowGroup(row, i, h, width, y) {
    const g = T.s("g", { class: "row", "data-program": row.program, transform: `translate(0,${y})` });
    g.append(T.s("rect", { class: i % 2 ? "row-bg odd" : "row-bg", x: 0, y: 0, width, height: h }),
      T.s("text", { class: "row-label", x: 6, y: 15 }, T.truncate(row.label, 40), T.s("title", { text: row.title || row.label })));
    if (row.sublabel) g.append(T.s("text", { class: "row-sub", x: 6, y: 29, text: T.truncate(row.sublabel, 44) }));
    return g;
  }

  // rows: [{label, sublabel, origin, lanes, spans, bands, markers}]; extent: seconds the x axis spans;
  // view: the window {lo, hi} drawn (default [0, extent]).
  T.renderGantt = function ({ rows, extent, width, hooks = true, items, view }) {
    const plotW = T.plotWidth(width);
    const scale = T.timeScale(view || { lo: 0, hi: extent }, plotW);
    const heights = rows.map((r) => ROW_PAD * 2 + BAND_H + 3 + r.lanes * (LANE_H + LANE_GAP));
    const total = AXIS_H + heights.reduce((a, b) => a + b, 0) + 4;
    const svg = T.s("svg", { class: "gantt", width: T.LABEL_W + plotW + T.PLOT_PAD, height: total,
      "data-lo": scale.lo, "data-hi": scale.hi });
    T.timeAxis(svg, scale, AXIS_H, total);
    let y = AXIS_H;
    rows.forEach((row, i) => {
      const g = rowGroup(row, i, heights[i], T.LABEL_W + plotW, y);
      const rel = (t) => t - row.origin;
      const laneY = (lane) => ROW_PAD + BAND_H + 3 + lane * (LANE_H + LANE_GAP);
      const add = (el) => el && g.append(el);
      for (const b of row.bands) {
        items.set(b.key, { type: "band", band: b, origin: row.origin, key: b.key });
        add(band(b, rel, scale, hooks));
      }
      for (const s of row.spans) {
        items.set(s.key, { type: "span", span: s, origin: row.origin, key: s.key });
        add(spanBar(s, rel, scale, laneY(s.lane || 0), hooks));
      }
      for (const m of row.markers) {
        items.set(m.key, { type: "marker", marker: m, origin: row.origin, key: m.key });
        add(marker(m, rel, scale, hooks));
      }
      svg.append(g);
      y += heights[i];
    });
    return svg;
  };

  // The rows of one trace: the model loads, then a row per program with spans, pins or markers (engine-wide
  // ones last).
  T.traceRows = function (model) {
    const rows = [];
    const names = T.programLabels(model.programs.filter((p) => !p.engine).map((p) => p.id));  // by task
    for (const p of model.programs) {
      if (!p.spans.length && !p.bands.length && !p.markers.length && p.engine) continue;
      rows.push({ program: p.id, label: p.engine ? "engine (no program)" : names.get(p.id), title: p.id,
        sublabel: p.name !== p.id ? p.name : p.status || "", origin: model.t0, lanes: p.lanes,
        spans: p.spans, bands: p.bands, markers: p.markers });
    }
    rows.sort((a, b) => (a.program === T.ENGINE) - (b.program === T.ENGINE));
    const loads = model.modelLoads || [];
    if (loads.length) {
      rows.unshift({ program: "_model_load", label: "model load", sublabel: loads[0].event.attrs.model || "",
        origin: model.t0, lanes: Math.max(1, ...loads.map((s) => s.lane + 1)), spans: loads, bands: [], markers: [] });
    }
    return rows;
  };
})(window.Tether);
