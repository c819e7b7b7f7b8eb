// A program's DAG as SVG: nodes in columns by dependency depth (0 for a node without deps, else one more
// than its deepest dep), ordered in a column by the mean row of their deps, coloured by status (a task that
// was planned but not run is "skipped"). Columns wrap into bands at the panel's width, so a long chain (a
// replayed agent's 40 turns) reads top to bottom; an edge to a later band runs down the column gaps.
"use strict";
(function (T) {
  const W = 156, H = 42, GAP_X = 56, GAP_Y = 14, PAD = 10, BAND_GAP = 34;
  const SIDE = GAP_X / 2; // room left and right for the edges that wrap to the next band
  const FILLS = { skipped: "#f8fafc" }; // statuses util.js has no colour for
  let arrowCount = 0;

  function layers(program) {
    const depth = new Map(), visiting = new Set();
    const depthOf = (n) => {
      if (depth.has(n.id)) return depth.get(n.id);
      if (visiting.has(n.id)) return 0; // a cycle: cannot happen in a valid program, but never loop
      visiting.add(n.id);
      let d = 0;
      for (const dep of n.deps) {
        const m = program.nodes.get(dep);
        if (m) d = Math.max(d, depthOf(m) + 1);
      }
      visiting.delete(n.id);
      depth.set(n.id, d);
      return d;
    };
    const cols = [];
    for (const n of program.nodes.values()) (cols[depthOf(n)] = cols[depthOf(n)] || []).push(n);
    const row = new Map();
    cols.forEach((col, k) => {
      if (k > 0) {
        const bary = (n) => {
          const rows = n.deps.filter((d) => row.has(d)).map((d) => row.get(d));
          return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity;
        };
        col.sort((a, b) => bary(a) - bary(b));
      }
      col.forEach((n, i) => row.set(n.id, i));
    });
    return cols.filter(Boolean);
  }

  function nodeLabel(n) {
    const tokens = T.nodeTokens(n);
    const end = n.endEvent ? n.endEvent.attrs || {} : {};
    if (n.turns.length) {
      return `llm · in ${T.fmtInt(tokens["gen_ai.usage.input_tokens"])} · out ${T.fmtInt(tokens["gen_ai.usage.output_tokens"])}`;
    }
    if (n.kind === "answer") return `answer · ${end.output === undefined ? "…" : T.fmtValue(end.output)}`;
    const what = n.kind === "tool" ? `tool · ${n.tool || "?"}` : n.kind || "node";
    return n.status === "skipped" ? `${what} · not run` : what;
  }

  // Columns into bands of at most `perBand` (the DAG wraps at the panel's width): each node's box position.
  function place(cols, perBand) { // layer: the node's column before wrapping (its dependency depth)
    const pos = new Map(), bands = [];
    for (let k = 0; k < cols.length; k += perBand) bands.push(cols.slice(k, k + perBand));
    let top = PAD;
    bands.forEach((band, b) => {
      const tallest = Math.max(1, ...band.map((c) => c.length));
      const bottom = top + tallest * H + (tallest - 1) * GAP_Y;
      band.forEach((col, k) => {
        const offset = ((tallest - col.length) * (H + GAP_Y)) / 2;
        col.forEach((n, i) => pos.set(n.id, { x: SIDE + k * (W + GAP_X), y: top + offset + i * (H + GAP_Y), band: b, bottom,
          layer: b * perBand + k }));
      });
      top = bottom + BAND_GAP;
    });
    return { pos, height: top - BAND_GAP + PAD, bands: bands.length };
  }

  // dep -> node: a curve within a band; to a later band, down the column gaps below the dep's band.
  function edgePath(from, to) {
    const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2;
    if (from.band === to.band) {
      const mid = (x1 + x2) / 2;
      return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
    }
    const gap = from.bottom + BAND_GAP / 2, right = x1 + GAP_X / 2, left = x2 - GAP_X / 2;
    return `M${x1},${y1} H${right} V${gap} H${left} V${y2} H${x2}`;
  }

  // items: the key → item map the click handler looks selections up in; maxWidth: wrap the columns to fit it.
  T.renderDag = function (program, traceName, origin, items, maxWidth) {
    const cols = layers(program);
    const fit = T.num(maxWidth) !== null ? Math.floor((maxWidth - 2 * SIDE + GAP_X) / (W + GAP_X)) : cols.length;
    const perBand = Math.max(1, Math.min(cols.length, fit));
    const { pos, height } = place(cols, perBand);
    const width = 2 * SIDE + perBand * W + (perBand - 1) * GAP_X;
    const arrow = `dag-arrow-${++arrowCount}`;
    const svg = T.s("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, "data-edges": 0 },
      T.s("defs", {}, T.s("marker", { id: arrow, viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7,
        markerHeight: 7, orient: "auto" }, T.s("path", { d: "M0,0 L8,4 L0,8 z", class: "dag-arrow" }))));
    let edges = 0;
    for (const n of program.nodes.values()) {
      for (const dep of n.deps) {
        const from = pos.get(dep);
        if (!from) continue;
        edges += 1;
        svg.append(T.s("path", { class: "dag-edge", "data-from": dep, "data-to": n.id, d: edgePath(from, pos.get(n.id)),
          "marker-end": `url(#${arrow})` }));
      }
    }
    svg.setAttribute("data-edges", edges);
    for (const n of program.nodes.values()) {
      const { x, y, layer } = pos.get(n.id);
      const key = `node:${traceName}:${program.id}:${n.id}`;
      const end = n.endEvent ? n.endEvent.attrs || {} : {};
      items.set(key, { type: "node", node: n, program, origin, key });
      svg.append(T.s("g", { class: `node status-${n.status}${n.kind ? ` kind-${n.kind}` : ""}`, "data-node": n.id,
        "data-program": program.id, "data-key": key, "data-status": n.status, "data-layer": layer,
        transform: `translate(${x},${y})` },
        T.s("title", { text: `${n.id} (${n.kind || "node"}, ${n.status})${end.reason ? `\n${end.reason}` : ""}` }),
        T.s("rect", { width: W, height: H, rx: 6, fill: T.STATUS_COLORS[n.status] || FILLS[n.status] || T.STATUS_COLORS.pending }),
        T.s("text", { x: 8, y: 17, class: "node-id", text: T.truncate(n.id, 22) }),
        T.s("text", { x: 8, y: 33, class: "node-sub", text: T.truncate(nodeLabel(n), 26) })));
    }
    return svg;
  };
})(window.Tether);
