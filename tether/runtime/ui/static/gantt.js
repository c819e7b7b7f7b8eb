// The timeline as SVG: one row per program (or per program and policy when comparing), spans in greedy
// lanes, LLM bars split into queued / prefill / decode, the pinned band above the lanes and KV markers.
// Every LLM bar is one <g data-kind="llm">, every tool bar one <g data-kind="tool">, every marker one
// <g data-kind="kv"> (with hooks off, as in the comparison, the same value goes in data-cmp instead).
"use strict";
(function (T) {
  T.LABEL_W = 190;
  T.PLOT_PAD = 14;
  const LANE_H = 16, LANE_GAP = 3, BAND_H = 6, ROW_PAD = 5, AXIS_H = 24;

  T.plotWidth = (width) => Math.max(240, width - T.LABEL_W - T.PLOT_PAD);

  T.timeAxis = function (svg, extent, plotW, top, bottom) {
    for (const v of T.ticks(extent, Math.max(2, Math.floor(plotW / 90)))) {
      const x = T.LABEL_W + (v / extent) * plotW;
      const anchor = x > T.LABEL_W + plotW - 24 ? "end" : "middle";
      svg.append(T.s("line", { class: "grid", x1: x, x2: x, y1: top, y2: bottom }),
        T.s("text", { class: "tick", x, y: top - 6, "text-anchor": anchor, text: T.fmtSeconds(v) }));
    }
  };

  function spanTitle(s) {
    const a = s.event.attrs;
    const what = s.kind === "tool" ? `tool ${a["gen_ai.tool.name"] || a.tool || ""}` : `llm ${s.source === "engine" ? "request" : "turn"}`;
    const parts = [`${what} · ${s.node ?? ""}`, `duration ${T.fmtSeconds(s.end - s.start)}`];
    for (const ph of s.phases || []) parts.push(`${ph.phase} ${T.fmtSeconds(ph.end - ph.start)}`);
    if (s.status) parts.push(`status ${s.status}`);
    return parts.join("\n");
  }

  function hook(kind, hooks) {
    return hooks ? { "data-kind": kind } : { "data-cmp": kind };
  }

  // rows: [{label, sublabel, origin, lanes, spans, bands, markers}]; extent: seconds the x axis spans.
  T.renderGantt = function ({ rows, extent, width, hooks = true, items }) {
    const plotW = T.plotWidth(width);
    const x = (t, origin) => T.LABEL_W + Math.max(0, (t - origin) / extent) * plotW;
    const heights = rows.map((r) => ROW_PAD * 2 + BAND_H + 3 + r.lanes * (LANE_H + LANE_GAP));
    const total = AXIS_H + heights.reduce((a, b) => a + b, 0) + 4;
    const svg = T.s("svg", { class: "gantt", width: T.LABEL_W + plotW + T.PLOT_PAD, height: total });
    T.timeAxis(svg, extent, plotW, AXIS_H, total);
    let y = AXIS_H;
    rows.forEach((row, i) => {
      const h = heights[i];
      const g = T.s("g", { class: "row", "data-program": row.program, transform: `translate(0,${y})` });
      g.append(T.s("rect", { class: i % 2 ? "row-bg odd" : "row-bg", x: 0, y: 0, width: T.LABEL_W + plotW, height: h }),
        T.s("text", { class: "row-label", x: 6, y: 15 }, T.truncate(row.label, 24), T.s("title", { text: row.label })));
      if (row.sublabel) g.append(T.s("text", { class: "row-sub", x: 6, y: 29, text: T.truncate(row.sublabel, 28) }));
      const laneY = (lane) => ROW_PAD + BAND_H + 3 + lane * (LANE_H + LANE_GAP);
      for (const b of row.bands) {
        items.set(b.key, { type: "band", band: b, origin: row.origin, key: b.key });
        const x1 = x(b.start, row.origin), w = Math.max(1.5, x(b.end, row.origin) - x1);
        g.append(T.s("rect", { class: "pin-band", ...hook("pin", hooks), "data-key": b.key, x: x1, y: ROW_PAD,
          width: w, height: BAND_H }, T.s("title", { text: `pinned ${T.fmtSeconds(b.end - b.start)}${b.endAction ? ` → ${b.endAction}` : " (open)"}` })));
      }
      for (const s of row.spans) {
        items.set(s.key, { type: "span", span: s, origin: row.origin, key: s.key });
        const x1 = x(s.start, row.origin), w = Math.max(1.5, x(s.end, row.origin) - x1), top = laneY(s.lane || 0);
        const bar = T.s("g", { class: `bar ${s.kind} source-${s.source}${s.status && s.status !== "ok" ? " failed" : ""}`,
          ...hook(s.kind, hooks), "data-key": s.key, "data-node": s.node, "data-request": s.event.attrs.request_id },
          T.s("title", { text: spanTitle(s) }),
          T.s("rect", { class: "bar-base", x: x1, y: top, width: w, height: LANE_H, rx: 2 }));
        for (const ph of s.phases || []) {
          const px = x(ph.start, row.origin);
          bar.append(T.s("rect", { class: `phase ${ph.phase}`, "data-phase": ph.phase, x: px, y: top + 2,
            width: Math.max(1, x(ph.end, row.origin) - px), height: LANE_H - 4 }));
        }
        g.append(bar);
      }
      for (const m of row.markers) {
        items.set(m.key, { type: "marker", marker: m, origin: row.origin, key: m.key });
        const mx = x(m.ts, row.origin);
        g.append(T.s("g", { class: `marker ${m.action}`, ...hook("kv", hooks), "data-action": m.action, "data-key": m.key },
          T.s("title", { text: `${m.action} · ${T.fmtInt(m.event.attrs.blocks)} blocks` }),
          T.s("path", { d: `M${mx - 5},${ROW_PAD - 3} L${mx + 5},${ROW_PAD - 3} L${mx},${ROW_PAD + BAND_H + 2} z` })));
      }
      svg.append(g);
      y += h;
    });
    return svg;
  };

  // The rows of one trace: a row per program with spans, pins or markers (engine-wide ones last).
  T.traceRows = function (model) {
    const rows = [];
    for (const p of model.programs) {
      if (!p.spans.length && !p.bands.length && !p.markers.length && p.engine) continue;
      rows.push({ program: p.id, label: p.engine ? "engine (no program)" : p.id,
        sublabel: p.name !== p.id ? p.name : p.status || "", origin: model.t0, lanes: p.lanes,
        spans: p.spans, bands: p.bands, markers: p.markers });
    }
    return rows.sort((a, b) => (a.program === T.ENGINE) - (b.program === T.ENGINE));
  };
})(window.Tether);
