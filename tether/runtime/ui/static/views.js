// The pages: the run list, one run (DAGs, timeline, counters, details, export) and a replay's policies
// side by side. Each render rebuilds its SVG from the payload's events; the details panel is kept.
"use strict";
(function (T) {
  const h = T.h;
  const DAGS_OPEN = 3;
  const DAG_LIST_MAX = 4; // more programs with a DAG: only the selected one's is drawn
  const COMPARE_PROGRAMS = 20; // programs in the two-policy comparison (the selected one, then the list's order)
  const TIMELINE_PROGRAMS = 30; // a trace of more programs: its timeline shows this many (likewise)
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
    if (Object.keys(models).length > 1) { // one program under several policies is one program
      const ids = new Set();
      for (const m of Object.values(models)) for (const p of m.programs) if (!p.engine) ids.add(p.id);
      tot.programs = ids.size;
    }
    const duration = T.num(meta.ended) !== null ? meta.ended - meta.started
      : state.snapshot ? null : Date.now() / 1000 - meta.started;
    const stat = (label, value, id, attrs) => h("div", { class: "stat", id, ...attrs }, h("span", { class: "label", text: label }), h("b", { text: value }));
    const simulated = T.isSimulated(meta);
    const time = simulated
      ? [stat("simulated time", T.fmtSeconds(simulatedSeconds(meta, models)), "stat-duration", { "data-clock": "simulated",
        title: "the replay's virtual clock (the longest policy's makespan), not the time it took to compute" }),
      stat("wall time", T.fmtSeconds(duration), "stat-wall", { "data-clock": "wall" })]
      : [stat("duration", T.fmtSeconds(duration), "stat-duration", { "data-clock": "wall" })];
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
        time,
        stat("input tokens", T.fmtInt(tot.input_tokens), "stat-input"),
        stat("output tokens", T.fmtInt(tot.output_tokens), "stat-output"),
        stat("cache hit", T.fmtPct(tot.input_tokens ? tot.cache_read_tokens / tot.input_tokens : null), "stat-cache"),
        h("div", { class: "export", id: "export" }, h("span", { class: "label", text: "export" }), T.exportLinks(state))),
    ];
  }

  // A simulated replay (tether replay --simulate): its traces are on the simulation's virtual clock.
  T.isSimulated = (meta) => meta.kind === "replay" && (meta.simulate === true || (meta.settings || {}).simulate === true);

  // The simulated seconds a replay covers: the longest makespan of its result rows, else the longest trace.
  function simulatedSeconds(meta, models) {
    const rows = Array.isArray(meta.results) ? meta.results.map((r) => T.num(r && r.makespan_s)).filter((v) => v !== null) : [];
    if (rows.length) return Math.max(...rows);
    const spans = Object.values(models).map((m) => m.t1 - m.t0);
    return spans.length ? Math.max(...spans) : null;
  }

  function section(id, title, ...children) {
    return h("section", { id, class: "panel" }, h("h2", { text: title }), children);
  }

  function dagSummary(state, p, label) {
    return [h("b", { text: label || p.name }), ` ${p.id !== (label || p.name) ? p.id : ""} · ${p.nodes.size} nodes · `,
      chip(p.status || (state.payload.meta.status === "running" ? "running" : "no program_end"))];
  }

  // Up to DAG_LIST_MAX programs: each DAG in a collapsible block; more: the selected program's alone (the
  // Programs panel picks it), so hundreds of programs do not make the page hundreds of DAGs tall.
  function dagSection(state, model, list, width) {
    const programs = model.programs.filter((p) => p.hasDag && p.nodes.size);
    if (!programs.length) return null; // engine-only traces (serve) record no DAG
    if (programs.length > DAG_LIST_MAX) {
      const has = new Set(programs.map((p) => p.id));
      const rows = list.rows.filter((r) => has.has(r.id));
      const id = has.has(state.program) ? state.program : rows.length ? rows[0].id : programs[0].id;
      const p = model.programMap.get(id), label = list.labels.get(id);
      return section("dags", `DAG of one program (${programs.length} have one: pick it in Programs)`,
        h("div", { class: "dag-program dag-single", "data-program": id }, h("div", { class: "dag-title" }, dagSummary(state, p, label)),
          h("div", { class: "dag-box" }, T.renderDag(p, model.name, model.t0, state.items, width))));
    }
    const blocks = programs.map((p, i) => {
      const key = `${model.name}:${p.id}`;
      const open = state.dagOpen.has(key) ? state.dagOpen.get(key) : i < DAGS_OPEN;
      const box = h("div", { class: "dag-box" });
      const details = h("details", { class: "dag-program", "data-program": p.id, open }, h("summary", {}, dagSummary(state, p)), box);
      const draw = () => { if (details.open && !box.firstChild) box.append(T.renderDag(p, model.name, model.t0, state.items, width)); };
      details.addEventListener("toggle", () => { state.dagOpen.set(key, details.open); draw(); });
      draw();
      return details;
    });
    return section("dags", programs.length > 1 ? `DAGs (${programs.length} programs)` : "DAG", blocks);
  }

  // The replay's result rows: a column per value that differs between rows (headers wrap at "_"); the values
  // every row shares are listed once under the table. It scrolls inside its panel when still too wide.
  function resultsTable(results) {
    if (!Array.isArray(results) || !results.length) return null;
    const cols = [];
    for (const r of results) for (const k of Object.keys(r || {})) if (!cols.includes(k)) cols.push(k);
    const cell = (r, c) => (r && c in r ? T.fmtValue(r[c]) : "");
    const same = results.length > 1 ? cols.filter((c, i) => i > 0 && results.every((r) => cell(r, c) === cell(results[0], c))) : [];
    const shown = cols.filter((c) => !same.includes(c));
    return h("div", { class: "results-box" },
      h("div", { class: "table-scroll" }, h("table", { class: "results", id: "results" },
        h("thead", {}, h("tr", {}, shown.map((c) => h("th", { "data-col": c, title: c, text: c.replaceAll("_", "_\u200b") })))),
        h("tbody", {}, results.map((r) => h("tr", {}, shown.map((c) => h("td", { "data-col": c, text: cell(r, c) }))))))),
      same.length ? h("p", { class: "results-same muted", id: "results-same" }, "same for every policy: ",
        same.map((c, i) => [i ? " · " : "", h("span", { "data-col": c }, `${c} `, h("b", { text: cell(results[0], c) }))])) : null);
  }

  function policySelect(id, names, value, onChange) {
    const sel = h("select", { id }, names.map((n) => h("option", { value: n, text: n })));
    sel.value = value;
    sel.addEventListener("change", () => onChange(sel.value));
    return sel;
  }

  function pickPolicies(state, names) {
    const pick = (want, fallback) => (names.includes(want) ? want : fallback);
    state.policyA = names.includes(state.policyA) ? state.policyA : pick("vllm", names[0]);
    state.policyB = names.includes(state.policyB) ? state.policyB : pick("tether", names[1] || names[0]);
  }

  function compareSection(state, models, width) {
    const names = Object.keys(models);
    const cdf = T.renderCdf({ id: "jct-cdf", width,
      series: names.map((n, i) => ({ name: n, color: T.PALETTE[i % T.PALETTE.length], values: models[n].jct })) });
    return section("compare", "Policies", resultsTable(state.payload.meta.results),
      h("h3", { text: "JCT CDF (per program: program_end duration, else last − first event)" }), cdf);
  }

  // The selected program, then the list's order: the programs a bounded view shows first.
  function firstPrograms(state, list, n) {
    const ids = state.program ? [state.program] : [];
    for (const r of list.rows) if (ids.length < n && !ids.includes(r.id)) ids.push(r.id);
    return ids.slice(0, n);
  }

  function comparisonSection(state, models, list, width) {
    const names = Object.keys(models);
    const a = models[state.policyA], b = models[state.policyB];
    const shown = firstPrograms(state, list, COMPARE_PROGRAMS);
    const extent = Math.max(a.t1 - a.t0, b.t1 - b.t0);
    // a block per program: its name (HTML, not cut below LABEL_CHARS) above its rows under A and B
    const blocks = shown.map((pid) => {
      const rows = [[a, state.policyA], [b, state.policyB]].map(([m, policy]) => {
        const p = m.programMap.get(pid);
        return { program: pid, label: policy, sublabel: p ? `JCT ${T.fmtSeconds(p.jct)}` : "not in this trace", origin: m.t0,
          lanes: p ? p.lanes : 1, spans: p ? p.spans : [], bands: p ? p.bands : [], markers: p ? p.markers : [] };
      });
      const label = list.labels.get(pid) || pid;
      return h("div", { class: `cmp-program${pid === state.program ? " selected" : ""}`, "data-program": pid },
        h("div", { class: "cmp-name", title: pid, "data-label": label, text: T.truncate(label, T.LABEL_CHARS) }),
        T.renderGantt({ rows, extent, width, hooks: false, items: state.items }));
    });
    const rerender = () => T.render();
    return section("comparison", "Each program under two policies",
      h("div", { class: "policy-pick" }, policySelect("policy-a", names, state.policyA, (v) => { state.policyA = v; rerender(); }),
        " and ", policySelect("policy-b", names, state.policyB, (v) => { state.policyB = v; rerender(); }),
        list.rows.length > shown.length ? h("span", { class: "hint", text: ` · ${shown.length} of ${list.total} programs: the selected one, then the Programs list's order` }) : null),
      blocks.length ? h("div", { class: "scroll bounded", id: "compare-gantt" }, blocks)
        : h("p", { class: "hint", text: "No programs in these traces." }));
  }

  // A trace of more than TIMELINE_PROGRAMS programs: the timeline shows the selected one and the list's first.
  function timelineModel(state, model, list) {
    const count = model.programs.filter((p) => !p.engine).length;
    if (count <= TIMELINE_PROGRAMS) return { model, note: null };
    const ids = firstPrograms(state, list, TIMELINE_PROGRAMS).filter((id) => model.programMap.has(id));
    const programs = [...ids.map((id) => model.programMap.get(id)), ...model.programs.filter((p) => p.engine)];
    return { model: { ...model, programs },
      note: h("p", { class: "hint", id: "timeline-note", text: `The timeline shows ${ids.length} of ${count} programs: the selected one, then the Programs list's order (search or sort it to show others).` }) };
  }

  // Building the models is the costly part of a render: reuse them while no trace has new events.
  function buildModels(state) {
    const names = Object.keys(state.payload.traces);
    const sig = names.map((n) => `${n}:${state.payload.traces[n].length}`).join("|");
    const cache = state.modelCache;
    if (cache && cache.payload === state.payload && cache.sig === sig) return cache.models;
    const models = {};
    for (const n of names) models[n] = T.buildTrace(state.payload.traces[n], n);
    state.modelCache = { payload: state.payload, sig, models };
    return models;
  }

  // The run page; state.payload holds run.json and the events of every trace.
  T.renderRunView = function (container, state) {
    let view = document.getElementById("run-view");
    if (!view || view.dataset.runId !== state.runId) {
      view = h("section", { id: "run-view", "data-run-id": state.runId },
        h("header", { class: "run-head" }), h("div", { class: "run-body" }, h("div", { class: "run-main" }), h("aside", { id: "details" })));
      container.replaceChildren(view);
      T.showDetails(null);
      Object.assign(state, { program: null, programQuery: "", programSort: "arrival", programDesc: null });
    }
    const names = Object.keys(state.payload.traces);
    const models = buildModels(state);
    state.models = models;
    state.items = new Map();
    if (!names.includes(state.trace)) state.trace = names.includes("main") ? "main" : names[0];
    view.querySelector(".run-head").replaceChildren(...runHead(state, models).filter(Boolean));
    const main = view.querySelector(".run-main");
    const width = Math.max(320, (main.clientWidth || 1000) - PANEL_INSET);
    const parts = [];
    if (!names.length) parts.push(h("p", { class: "hint", text: "This run has no traces yet." }));
    else {
      pickPolicies(state, names);
      const model = models[state.trace];
      const list = T.programRows(state, models);
      state.program = T.selectedProgram(state, list.rows);
      const dagCount = model.programs.filter((p) => p.hasDag && p.nodes.size).length;
      if (names.length > 1) parts.push(compareSection(state, models, width));
      if (names.length > 1 || dagCount > DAG_LIST_MAX || list.total > TIMELINE_PROGRAMS) parts.push(T.programsPanel(state, list, T.render));
      if (names.length > 1) {
        parts.push(comparisonSection(state, models, list, width));
        const sel = policySelect("trace-select", names, state.trace, (v) => { state.trace = v; T.render(); });
        parts.push(h("div", { class: "trace-pick" }, "Trace ", sel, ` · ${model.counts.llm_turn} llm_turn · ${model.counts.tool_call} tool_call`,
          T.isSimulated(state.payload.meta) ? " · times on the simulated clock" : ""));
      }
      const shown = timelineModel(state, model, list);
      parts.push(dagSection(state, model, list, width), shown.note, ...T.timelineSections(state, shown.model, width)); // timeline.js
    }
    main.replaceChildren(...parts.filter(Boolean));
    const selected = state.selected && state.items.get(state.selected);
    if (selected) {
      T.showDetails(selected);
      for (const el of main.querySelectorAll(`[data-key="${CSS.escape(state.selected)}"]`)) el.classList.add("selected");
    }
  };
})(window.Tether);
