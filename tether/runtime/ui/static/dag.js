// A program's DAG as SVG: nodes in columns by dependency depth (0 for a node without deps, else one more
// than its deepest dep), ordered in a column by the mean row of their deps, coloured by status.
"use strict";
(function (T) {
  const W = 156, H = 42, GAP_X = 56, GAP_Y = 14, PAD = 10;
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
    if (n.turns.length) {
      return `llm · in ${T.fmtInt(tokens["gen_ai.usage.input_tokens"])} · out ${T.fmtInt(tokens["gen_ai.usage.output_tokens"])}`;
    }
    return n.kind === "tool" ? `tool · ${n.tool || "?"}` : n.kind || "node";
  }

  // items: the key → item map the click handler looks selections up in.
  T.renderDag = function (program, traceName, origin, items) {
    const cols = layers(program);
    const tallest = Math.max(1, ...cols.map((c) => c.length));
    const width = PAD * 2 + cols.length * W + Math.max(0, cols.length - 1) * GAP_X;
    const height = PAD * 2 + tallest * H + (tallest - 1) * GAP_Y;
    const pos = new Map();
    cols.forEach((col, k) => {
      const offset = ((tallest - col.length) * (H + GAP_Y)) / 2;
      col.forEach((n, i) => pos.set(n.id, { x: PAD + k * (W + GAP_X), y: PAD + offset + i * (H + GAP_Y) }));
    });
    const arrow = `dag-arrow-${++arrowCount}`;
    const svg = T.s("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}` },
      T.s("defs", {}, T.s("marker", { id: arrow, viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7,
        markerHeight: 7, orient: "auto" }, T.s("path", { d: "M0,0 L8,4 L0,8 z", class: "dag-arrow" }))));
    for (const n of program.nodes.values()) {
      const to = pos.get(n.id);
      for (const dep of n.deps) {
        const from = pos.get(dep);
        if (!from) continue;
        const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2, mid = (x1 + x2) / 2;
        svg.append(T.s("path", { class: "dag-edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
          "marker-end": `url(#${arrow})` }));
      }
    }
    for (const n of program.nodes.values()) {
      const { x, y } = pos.get(n.id);
      const key = `node:${traceName}:${program.id}:${n.id}`;
      items.set(key, { type: "node", node: n, program, origin, key });
      svg.append(T.s("g", { class: `node status-${n.status}`, "data-node": n.id, "data-program": program.id,
        "data-key": key, "data-status": n.status, transform: `translate(${x},${y})` },
        T.s("title", { text: `${n.id} (${n.kind || "node"}, ${n.status})` }),
        T.s("rect", { width: W, height: H, rx: 6, fill: T.STATUS_COLORS[n.status] || T.STATUS_COLORS.pending }),
        T.s("text", { x: 8, y: 17, class: "node-id", text: T.truncate(n.id, 22) }),
        T.s("text", { x: 8, y: 33, class: "node-sub", text: T.truncate(nodeLabel(n), 26) })));
    }
    return svg;
  };
})(window.Tether);
