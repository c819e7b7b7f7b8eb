// The run's timeline and engine counters, on one time axis and one view window: the mouse wheel over the plot
// zooms around the cursor, a drag pans, a horizontal wheel pans, "reset zoom" shows the whole trace again.
// The window, seconds [lo, hi] from the trace's start, is state.zoom (per run and trace), kept across
// re-renders (live updates, resizes); a zoom or pan redraws only these two panels, once per frame.
"use strict";
(function (T) {
  const h = T.h;
  const MIN_SPAN_S = 1e-4; // the narrowest window: 0.1 ms
  const WHEEL_ZOOM = 0.002; // the window scales by exp(deltaY * this) per wheel event
  const DRAG_PX = 3; // a press that moves less is a click

  // [lo, hi] inside [0, extent], at least MIN_SPAN_S wide (or the whole extent when that is narrower).
  T.clampView = function (lo, hi, extent) {
    const span = Math.min(extent, Math.max(MIN_SPAN_S, hi - lo));
    const start = Math.min(Math.max(0, lo), extent - span);
    return { lo: start, hi: start + span };
  };

  function currentView(state, model) {
    const extent = model.t1 - model.t0, z = state.zoom;
    if (!z || z.run !== state.runId || z.trace !== model.name) return { lo: 0, hi: extent, zoomed: false };
    return { ...T.clampView(z.lo, z.hi, extent), zoomed: true };
  }

  function legend() {
    const item = (cls, text, attrs = {}) => h("span", { class: "legend-item", ...attrs }, h("i", { class: `swatch ${cls}` }), text);
    return h("div", { class: "legend" },
      ["queued", "prefill", "decode"].map((n) => h("span", { class: "legend-item" }, h("i", { class: "swatch", style: `background:${T.PHASE_COLORS[n]}` }), n)),
      item("llm", "llm (no engine events)"), item("tool", "tool"), item("failed", "failed"), item("load", "model load"),
      item("open", "unfinished"), item("pin", "KV pinned (GPU)"), item("marker", "expired / dropped / parked / swapped"),
      item("prefetched", "prefetched", { "data-legend": "prefetched" }));
  }

  function counterCharts(model, width, view) {
    const series = (keys) => keys.map(([k, color]) => ({ name: k, color, points: model.steps.filter((s) => T.num(s[k]) !== null).map((s) => [s.t, s[k]]) }));
    const common = { origin: model.t0, extent: model.t1 - model.t0, width, view };
    return [
      T.renderCounters({ ...common, id: "kv-chart", title: "KV blocks",
        series: series([["blocks_used", "#2563eb"], ["blocks_pinned", "#7c3aed"], ["blocks_cpu", "#d97706"]]) }),
      T.renderCounters({ ...common, id: "queue-chart", title: "queue depth", series: series([["running", "#059669"], ["waiting", "#dc2626"]]) }),
    ];
  }

  // Wheel and drag on a panel: `at(clientX)` is the seconds under the pointer (null off the plot).
  function interact(box, state, model, redraw) {
    const extent = model.t1 - model.t0;
    const set = (lo, hi) => {
      const v = T.clampView(lo, hi, extent);
      state.zoom = v.hi - v.lo >= extent ? null : { run: state.runId, trace: model.name, ...v };
      redraw();
    };
    const frac = (clientX) => {
      const svg = box.querySelector("svg");
      if (!svg) return null;
      const left = svg.getBoundingClientRect().left + T.LABEL_W;
      const f = (clientX - left) / T.plotWidth(+svg.getAttribute("width")); // the svg is label + plot + pad wide
      return f >= 0 && f <= 1 ? f : null;
    };
    box.addEventListener("wheel", (e) => {
      const f = frac(e.clientX);
      if (f === null) return; // over the labels: the page scrolls
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      const v = currentView(state, model), span = v.hi - v.lo;
      if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        const shift = (e.deltaX * unit / 800) * span;
        set(v.lo + shift, v.hi + shift);
        return;
      }
      const next = Math.min(extent, Math.max(MIN_SPAN_S, span * Math.exp(e.deltaY * unit * WHEEL_ZOOM)));
      const t = v.lo + f * span;
      set(t - f * next, t - f * next + next);
    }, { passive: false });
    box.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || frac(e.clientX) === null) return;
      const v0 = currentView(state, model), x0 = e.clientX;
      const svg = box.querySelector("svg");
      const plotW = T.plotWidth(+svg.getAttribute("width"));
      let dragging = false;
      const move = (m) => {
        if (!dragging && Math.abs(m.clientX - x0) < DRAG_PX) return;
        dragging = true;
        document.body.dataset.panning = "on";
        const shift = -((m.clientX - x0) / plotW) * (v0.hi - v0.lo);
        set(v0.lo + shift, v0.hi + shift);
      };
      const up = () => {
        window.removeEventListener("pointermove", move);
        window.removeEventListener("pointerup", up);
        delete document.body.dataset.panning;
        if (!dragging) return;
        const swallow = (c) => { c.stopPropagation(); c.preventDefault(); };
        window.addEventListener("click", swallow, { capture: true, once: true }); // a drag is not a click
        setTimeout(() => window.removeEventListener("click", swallow, { capture: true }), 0);
      };
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
    });
  }

  // [timeline section, counters section] of `model`, drawn in the view window and redrawn when it changes.
  T.timelineSections = function (state, model, width) {
    const rows = T.traceRows(model);
    const ganttBox = h("div", { class: "scroll", id: "gantt" });
    const countersBox = h("div", { class: "counters-box" });
    const reset = h("button", { type: "button", id: "zoom-reset", text: "reset zoom" });
    const where = h("span", { class: "zoom-window muted", id: "zoom-window" });
    let frame = null;
    const draw = () => {
      const v = currentView(state, model), extent = model.t1 - model.t0;
      if (rows.length) ganttBox.replaceChildren(T.renderGantt({ rows, extent, width, items: state.items, view: v }));
      if (model.steps.length) countersBox.replaceChildren(...counterCharts(model, width, v));
      reset.disabled = !v.zoomed;
      where.textContent = v.zoomed ? `${T.fmtSeconds(v.lo)} – ${T.fmtSeconds(v.hi)} of ${T.fmtSeconds(extent)}` : "wheel: zoom · drag: pan";
      if (state.selected) for (const el of ganttBox.querySelectorAll(`[data-key="${CSS.escape(state.selected)}"]`)) el.classList.add("selected");
    };
    const redraw = () => { if (frame === null) frame = requestAnimationFrame(() => { frame = null; draw(); }); };
    reset.addEventListener("click", () => { state.zoom = null; redraw(); });
    draw();
    const tools = h("div", { class: "zoom-tools" }, where, reset);
    const timeline = h("section", { id: "timeline", class: "panel" }, h("div", { class: "panel-head" }, h("h2", { text: "Timeline" }), tools),
      legend(), rows.length ? ganttBox : h("p", { class: "hint", text: "No spans yet." }));
    const counters = h("section", { id: "counters", class: "panel" }, h("h2", { text: "Engine counters" }),
      model.steps.length ? countersBox : h("p", { class: "hint", text: "No engine_step events in this trace." }));
    interact(ganttBox, state, model, redraw);
    interact(countersBox, state, model, redraw);
    return [timeline, counters];
  };
})(window.Tether);
