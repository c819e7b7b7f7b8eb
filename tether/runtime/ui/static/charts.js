// Line charts as SVG: the engine's counters over the run (on the timeline's x scale and window, so they stay
// aligned with it when zoomed) and the JCT CDF of each policy of a replay.
"use strict";
(function (T) {
  const TOP = 14, BOTTOM = 22;

  function legend(series) {
    return T.h("div", { class: "legend" }, series.map((s) =>
      T.h("span", { class: "legend-item", "data-series": s.name },
        T.h("i", { class: "swatch", style: `background:${s.color}` }), s.name)));
  }

  function yAxis(svg, max, y, left, right, fmt, whole) {
    for (const v of T.ticks(max, 3, whole)) {
      svg.append(T.s("line", { class: "grid", x1: left, x2: right, y1: y(v), y2: y(v) }),
        T.s("text", { class: "tick", x: left - 6, y: y(v) + 4, "text-anchor": "end", text: fmt(v) }));
    }
  }

  function stepPath(points, x, y) {
    let d = "", prev = null;
    for (const [px, py] of points) {
      d += prev === null ? `M${x(px)},${y(py)}` : ` H${x(px)} V${y(py)}`;
      prev = py;
    }
    return d;
  }

  // series: [{name, color, points: [[t, value]]}] over [origin, origin + extent], drawn in the timeline's window
  // view {lo, hi} (seconds from origin; default the whole extent) on its x scale (gantt.js), cut at its edges.
  T.renderCounters = function ({ title, series, origin, extent, width, height = 130, id, view }) {
    const plotW = T.plotWidth(width);
    const scale = T.timeScale(view || { lo: 0, hi: extent }, plotW);
    const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
    const x = (t) => Math.min(scale.right + 2, Math.max(scale.left - 2, scale.x(t - origin))); // the clip hides the rest
    const y = (v) => TOP + (1 - v / max) * (height - TOP - BOTTOM);
    const clipId = `${id}-clip`;
    const svg = T.s("svg", { class: "chart", id, width: T.LABEL_W + plotW + T.PLOT_PAD, height,
      "data-lo": scale.lo, "data-hi": scale.hi },
    T.s("clipPath", { id: clipId }, T.s("rect", { x: scale.left, y: 0, width: plotW, height })),
    T.s("text", { class: "chart-title", x: 6, y: TOP + 4, text: title }));
    yAxis(svg, max, y, T.LABEL_W, T.LABEL_W + plotW, T.fmtInt, true);
    for (const s of series) {
      if (!s.points.length) continue;
      svg.append(T.s("path", { class: "series", "data-series": s.name, d: stepPath(s.points, x, y), stroke: s.color,
        "clip-path": `url(#${clipId})` }));
    }
    return T.h("div", { class: "chart-box" }, legend(series), svg);
  };

  // series: [{name, color, values: [seconds]}]: the fraction of programs done within x seconds.
  T.renderCdf = function ({ series, width, height = 240, id }) {
    const left = 56, plotW = Math.max(240, Math.min(width, 760) - left - 20);
    const max = Math.max(1e-3, ...series.flatMap((s) => s.values));
    const x = (v) => left + (v / max) * plotW;
    const y = (f) => TOP + (1 - f) * (height - TOP - BOTTOM - 14);
    const svg = T.s("svg", { class: "chart cdf", id, width: left + plotW + 20, height });
    yAxis(svg, 1, y, left, left + plotW, (v) => `${Math.round(v * 100)}%`);
    for (const v of T.ticks(max, 6)) {
      svg.append(T.s("text", { class: "tick", x: x(v), y: height - BOTTOM + 4, "text-anchor": "middle", text: T.fmtSeconds(v) }));
    }
    svg.append(T.s("text", { class: "axis-label", x: left + plotW / 2, y: height - 4, "text-anchor": "middle", text: "program JCT" }));
    for (const s of series) {
      const sorted = [...s.values].sort((a, b) => a - b);
      if (!sorted.length) continue;
      const points = [[0, 0], ...sorted.map((v, i) => [v, (i + 1) / sorted.length])];
      svg.append(T.s("path", { class: "series", "data-series": s.name, stroke: s.color, d: stepPath(points, x, y) }));
    }
    return T.h("div", { class: "chart-box" }, legend(series), svg);
  };
})(window.Tether);
