// The pages: the run list, one run (DAGs, timeline, counters, details, export) and a replay's policies
// side by side. Each render rebuilds its SVG from the payload's events; the details panel is kept.
"use strict";
(function (T) {
  const h = T.h;
  const DAGS_OPEN = 3;
  const PANEL_INSET = 28; // a .panel's padding and border: the charts fit inside it

  function chip(status) {
    return h("span", { class: `chip status-${status || "unknown"}`, "data-status": status, text: status || "?" });
  }

  function tokensCell(r) {
    return `${T.fmtInt(r.input_tokens)} / ${T.fmtInt(r.output_tokens)}`;
  }

  T.renderRunList = function (container, data) {
    const runs = data.runs || [];
    const rows = runs.map((r) => h("tr", { "data-run-id": r.run_id, title: r.error || r.command || "" },
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}`, text: r.run_id })),
      h("td", { text: r.kind }),
      h("td", {}, r.error ? h("span", { class: "chip status-failed", text: "malformed trace" }) : chip(r.status)),
      h("td", { class: "num", text: T.fmtInt(r.programs) }),
      h("td", { class: "num", text: T.fmtSeconds(r.duration_s) }),
      h("td", { class: "num" }, tokensCell(r), Object.entries(r.traces || {}).map(([name, t]) =>
        h("div", { class: "sub", text: `${name}: ${tokensCell(t)}` }))),
      h("td", { class: "num" }, T.fmtPct(r.cache_hit_rate), Object.entries(r.traces || {}).map(([name, t]) =>
        h("div", { class: "sub", text: `${name}: ${T.fmtPct(t.cache_hit_rate)}` }))),
      h("td", { text: T.fmtTime(r.started) })));
    container.replaceChildren(
      h("section", { id: "run-list" },
        h("h1", {}, "Runs ", h("span", { class: "muted", text: data.root || "" })),
        runs.length
          ? h("table", { class: "runs", id: "runs" },
            h("thead", {}, h("tr", {}, ["run", "kind", "status", "programs", "duration", "tokens in / out",
              "cache hit", "started"].map((c) => h("th", { text: c })))),
            h("tbody", {}, rows))
          : h("p", { class: "hint", text: `No runs under ${data.root}. Record one: tether run examples/research.yaml --trace-dir ${data.root}` })));
  };

  function runHead(state, models) {
    const { meta } = state.payload;
    const tot = { programs: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0 };
    for (const m of Object.values(models)) for (const k of Object.keys(tot)) tot[k] += m.totals[k];
    const duration = T.num(meta.ended) !== null ? meta.ended - meta.started
      : state.snapshot ? null : Date.now() / 1000 - meta.started;
    const stat = (label, value, id) => h("div", { class: "stat", id }, h("span", { class: "label", text: label }), h("b", { text: value }));
    return [
      h("div", { class: "title-line" },
        state.snapshot ? null : h("a", { href: "#/", id: "back", text: "← runs" }),
        h("h1", { text: meta.run_id }), h("span", { id: "run-status" }, chip(meta.status)),
        state.live ? h("span", { class: "live", id: "live-indicator", text: "● live" }) : null),
      h("div", { class: "meta-line" }, `${meta.kind} · ${meta.name || ""} · started ${T.fmtTime(meta.started)}`,
        state.snapshot ? ` · snapshot of ${T.fmtTime(state.snapshot.created)}` : ""),
      meta.command ? h("code", { class: "command", text: meta.command }) : null,
      h("div", { class: "stats" },
        stat("programs", T.fmtInt(tot.programs), "stat-programs"),
        stat("duration", T.fmtSeconds(duration), "stat-duration"),
        stat("input tokens", T.fmtInt(tot.input_tokens), "stat-input"),
        stat("output tokens", T.fmtInt(tot.output_tokens), "stat-output"),
        stat("cache hit", T.fmtPct(tot.input_tokens ? tot.cache_read_tokens / tot.input_tokens : null), "stat-cache"),
        h("div", { class: "export", id: "export" }, h("span", { class: "label", text: "export" }), T.exportLinks(state))),
    ];
  }

  function section(id, title, ...children) {
    return h("section", { id, class: "panel" }, h("h2", { text: title }), children);
  }

  function dagSection(state, model) {
    const programs = model.programs.filter((p) => p.hasDag && p.nodes.size);
    if (!programs.length) return null; // engine-only traces (serve, replay) record no DAG
    const list = programs.map((p, i) => {
      const key = `${model.name}:${p.id}`;
      const open = state.dagOpen.has(key) ? state.dagOpen.get(key) : i < DAGS_OPEN;
      const box = h("div", { class: "dag-box" });
      const details = h("details", { class: "dag-program", "data-program": p.id, open },
        h("summary", {}, h("b", { text: p.name }), ` ${p.id !== p.name ? p.id : ""} · ${p.nodes.size} nodes · `,
          chip(p.status || (state.payload.meta.status === "running" ? "running" : "no program_end"))), box);
      const draw = () => { if (details.open && !box.firstChild) box.append(T.renderDag(p, model.name, model.t0, state.items)); };
      details.addEventListener("toggle", () => { state.dagOpen.set(key, details.open); draw(); });
      draw();
      return details;
    });
    return section("dags", programs.length > 1 ? `DAGs (${programs.length} programs)` : "DAG", list);
  }

  function timelineSection(model, width, items) {
    const rows = T.traceRows(model);
    const legend = h("div", { class: "legend" },
      [["queued", T.PHASE_COLORS.queued], ["prefill", T.PHASE_COLORS.prefill], ["decode", T.PHASE_COLORS.decode]]
        .map(([n, c]) => h("span", { class: "legend-item" }, h("i", { class: "swatch", style: `background:${c}` }), n)),
      h("span", { class: "legend-item" }, h("i", { class: "swatch llm" }), "llm (no engine events)"),
      h("span", { class: "legend-item" }, h("i", { class: "swatch tool" }), "tool"),
      h("span", { class: "legend-item" }, h("i", { class: "swatch failed" }), "failed"),
      h("span", { class: "legend-item" }, h("i", { class: "swatch pin" }), "KV pinned"),
      h("span", { class: "legend-item" }, h("i", { class: "swatch marker" }), "expired / dropped / parked / swapped"),
      h("span", { class: "legend-item", "data-legend": "prefetched" }, h("i", { class: "swatch prefetched" }), "prefetched"));
    const body = rows.length
      ? h("div", { class: "scroll", id: "gantt" }, T.renderGantt({ rows, extent: model.t1 - model.t0, width, items }))
      : h("p", { class: "hint", text: "No spans yet." });
    return section("timeline", "Timeline", legend, body);
  }

  function countersSection(model, width) {
    if (!model.steps.length) return section("counters", "Engine counters", h("p", { class: "hint", text: "No engine_step events in this trace." }));
    const series = (keys) => keys.map(([k, color]) => ({ name: k, color, points: model.steps.filter((s) => T.num(s[k]) !== null).map((s) => [s.t, s[k]]) }));
    const common = { origin: model.t0, extent: model.t1 - model.t0, width };
    return section("counters", "Engine counters",
      T.renderCounters({ ...common, id: "kv-chart", title: "KV blocks",
        series: series([["blocks_used", "#2563eb"], ["blocks_pinned", "#7c3aed"], ["blocks_cpu", "#d97706"]]) }),
      T.renderCounters({ ...common, id: "queue-chart", title: "queue depth",
        series: series([["running", "#059669"], ["waiting", "#dc2626"]]) }));
  }

  function resultsTable(results) {
    if (!Array.isArray(results) || !results.length) return null;
    const cols = [];
    for (const r of results) for (const k of Object.keys(r || {})) if (!cols.includes(k)) cols.push(k);
    return h("table", { class: "results", id: "results" }, h("thead", {}, h("tr", {}, cols.map((c) => h("th", { text: c })))),
      h("tbody", {}, results.map((r) => h("tr", {}, cols.map((c) => h("td", { text: r && c in r ? T.fmtValue(r[c]) : "" }))))));
  }

  function policySelect(id, names, value, onChange) {
    const sel = h("select", { id }, names.map((n) => h("option", { value: n, text: n })));
    sel.value = value;
    sel.addEventListener("change", () => onChange(sel.value));
    return sel;
  }

  function compareSection(state, models, width) {
    const names = Object.keys(models);
    const pick = (want, fallback) => (names.includes(want) ? want : fallback);
    state.policyA = names.includes(state.policyA) ? state.policyA : pick("vllm", names[0]);
    state.policyB = names.includes(state.policyB) ? state.policyB : pick("tether", names[1] || names[0]);
    const a = models[state.policyA], b = models[state.policyB];
    const cdf = T.renderCdf({ id: "jct-cdf", width,
      series: names.map((n, i) => ({ name: n, color: T.PALETTE[i % T.PALETTE.length], values: models[n].jct })) });
    const ids = [];
    for (const m of [a, b]) for (const p of m.programs) if (!p.engine && !ids.includes(p.id)) ids.push(p.id);
    const shown = ids.slice(0, 100);
    const rows = [];
    for (const pid of shown) {
      for (const [m, label] of [[a, state.policyA], [b, state.policyB]]) {
        const p = m.programMap.get(pid);
        rows.push({ program: pid, label: m === a ? pid : "", sublabel: label, origin: m.t0, lanes: p ? p.lanes : 1,
          spans: p ? p.spans : [], bands: p ? p.bands : [], markers: p ? p.markers : [] });
      }
    }
    const extent = Math.max(a.t1 - a.t0, b.t1 - b.t0);
    const rerender = () => T.render();
    return section("compare", "Policies", resultsTable(state.payload.meta.results),
      h("h3", { text: "JCT CDF (per program: program_end duration, else last − first event)" }), cdf,
      h("h3", {}, "Each program under ", policySelect("policy-a", names, state.policyA, (v) => { state.policyA = v; rerender(); }),
        " and ", policySelect("policy-b", names, state.policyB, (v) => { state.policyB = v; rerender(); })),
      ids.length > shown.length ? h("p", { class: "hint", text: `the first ${shown.length} of ${ids.length} programs` }) : null,
      rows.length ? h("div", { class: "scroll", id: "compare-gantt" }, T.renderGantt({ rows, extent, width, hooks: false, items: state.items }))
        : h("p", { class: "hint", text: "No programs in these traces." }));
  }

  // The run page; state.payload holds run.json and the events of every trace.
  T.renderRunView = function (container, state) {
    let view = document.getElementById("run-view");
    if (!view || view.dataset.runId !== state.runId) {
      view = h("section", { id: "run-view", "data-run-id": state.runId },
        h("header", { class: "run-head" }), h("div", { class: "run-body" }, h("div", { class: "run-main" }), h("aside", { id: "details" })));
      container.replaceChildren(view);
      T.showDetails(null);
    }
    const names = Object.keys(state.payload.traces);
    const models = {};
    for (const n of names) models[n] = T.buildTrace(state.payload.traces[n], n);
    state.models = models;
    state.items = new Map();
    if (!names.includes(state.trace)) state.trace = names.includes("main") ? "main" : names[0];
    view.querySelector(".run-head").replaceChildren(...runHead(state, models).filter(Boolean));
    const main = view.querySelector(".run-main");
    const width = Math.max(640, (main.clientWidth || 1000) - PANEL_INSET);
    const parts = [];
    if (names.length > 1) parts.push(compareSection(state, models, width));
    if (!names.length) parts.push(h("p", { class: "hint", text: "This run has no traces yet." }));
    else {
      const model = models[state.trace];
      if (names.length > 1) {
        const sel = policySelect("trace-select", names, state.trace, (v) => { state.trace = v; T.render(); });
        parts.push(h("div", { class: "trace-pick" }, "Trace ", sel, ` · ${model.counts.llm_turn} llm_turn · ${model.counts.tool_call} tool_call`));
      }
      parts.push(dagSection(state, model), timelineSection(model, width, state.items), countersSection(model, width));
    }
    main.replaceChildren(...parts.filter(Boolean));
    const selected = state.selected && state.items.get(state.selected);
    if (selected) {
      T.showDetails(selected);
      for (const el of main.querySelectorAll(`[data-key="${CSS.escape(state.selected)}"]`)) el.classList.add("selected");
    }
  };
})(window.Tether);
