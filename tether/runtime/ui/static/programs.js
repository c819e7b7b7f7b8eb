// The programs of a run, to find one among hundreds: a row per program named by its task (T.programLabels),
// its JCT under the two policies compared and their difference; a search box filters the rows by name, a
// sort orders them by arrival, by JCT under either policy or by the difference. The selected program
// (state.program) is the one whose DAG the page draws; the list's order picks the timelines' rows.
"use strict";
(function (T) {
  const h = T.h;
  const LABEL_CHARS = T.LABEL_CHARS = 64; // a label longer than this is cut (never below 40 characters); its title is the full id
  const STAMP = /^\d{4}-\d{2}-\d{2}(?:[_T ].*)?$/; // a date (and time) segment: a run's folder, not a task

  // "2025-08-14__19-39-35/fix-git/fix-git.1-of-1.2025-08-14__19-39-35~7" -> "fix-git~7": the id's "/" segments
  // less dates and trial names (a segment that starts with another one and a dot), its draw suffix kept.
  function taskName(id) {
    const [, base, draw] = id.match(/^(.*?)(~\d+)?$/);
    const segs = base.split("/").filter(Boolean);
    if (segs.length < 2) return id;
    const kept = segs.filter((s) => !STAMP.test(s) && !segs.some((o) => o !== s && s.startsWith(`${o}.`)));
    return kept.length ? kept.join("/") + (draw || "") : id;
  }

  // id -> label: the task name; where several programs share one, their date segment is added, else the id.
  T.programLabels = function (ids) {
    const labels = new Map(ids.map((id) => [id, taskName(id)]));
    const groups = (m) => {
      const out = new Map();
      for (const [id, l] of m) (out.get(l) || out.set(l, []).get(l)).push(id);
      return [...out.values()].filter((g) => g.length > 1);
    };
    for (const same of groups(labels)) {
      for (const id of same) {
        const stamp = id.split("/").find((s) => STAMP.test(s));
        labels.set(id, stamp ? `${labels.get(id)} (${stamp})` : id);
      }
    }
    for (const same of groups(labels)) for (const id of same) labels.set(id, id);
    return labels;
  };

  const SORTS = {
    arrival: { key: (r) => r.order, desc: false },
    "jct-a": { key: (r) => r.jctA, desc: true },
    "jct-b": { key: (r) => r.jctB, desc: true },
    diff: { key: (r) => r.diff, desc: true },
  };

  // The rows the list shows, filtered by state.programQuery and sorted by state.programSort / programDesc.
  T.programRows = function (state, models) {
    const names = Object.keys(models);
    const a = models[state.policyA] || models[names[0]];
    const b = names.length > 1 ? models[state.policyB] || models[names[1]] : null;
    const ids = [], seen = new Set();
    for (const m of b ? [a, b] : [a]) for (const p of m.programs) if (!p.engine && !seen.has(p.id)) { seen.add(p.id); ids.push(p.id); }
    const labels = T.programLabels(ids);
    const all = ids.map((id, order) => {
      const pa = a.programMap.get(id), pb = b ? b.programMap.get(id) : null;
      const jctA = pa ? T.num(pa.jct) : null, jctB = pb ? T.num(pb.jct) : null;
      return { id, label: labels.get(id), order, jctA, jctB, diff: jctA !== null && jctB !== null ? jctB - jctA : null,
        status: (pa && pa.status) || (pb && pb.status) || null };
    });
    const q = (state.programQuery || "").trim().toLowerCase();
    const rows = q ? all.filter((r) => r.id.toLowerCase().includes(q) || r.label.toLowerCase().includes(q)) : all;
    const sort = SORTS[state.programSort] || SORTS.arrival;
    const desc = state.programDesc ?? sort.desc;
    rows.sort((x, y) => {
      const kx = sort.key(x), ky = sort.key(y);
      if (kx === null || ky === null) return (kx === null) - (ky === null) || x.order - y.order;
      return (desc ? ky - kx : kx - ky) || x.order - y.order;
    });
    return { rows, total: all.length, labels, a, b };
  };

  function sortSelect(state, a, b, onChange) {
    const options = [["arrival", "arrival"], ["jct-a", `JCT under ${a.name}`]];
    if (b) options.push(["jct-b", `JCT under ${b.name}`], ["diff", `${b.name} − ${a.name}`]);
    const sel = h("select", { id: "program-sort" }, options.map(([v, t]) => h("option", { value: v, text: t })));
    sel.value = SORTS[state.programSort] && options.some(([v]) => v === state.programSort) ? state.programSort : "arrival";
    sel.addEventListener("change", () => { state.programSort = sel.value; state.programDesc = null; onChange(); });
    return sel;
  }

  function orderButton(state, onChange) {
    const sort = SORTS[state.programSort] || SORTS.arrival;
    const desc = state.programDesc ?? sort.desc;
    const [down, up] = state.programSort === "diff" || (state.programSort || "arrival").startsWith("jct") ? ["↓ largest first", "↑ smallest first"] : ["↓ latest first", "↑ earliest first"];
    const button = h("button", { type: "button", id: "sort-order", "data-desc": String(desc), text: desc ? down : up });
    button.addEventListener("click", () => { state.programDesc = !desc; onChange(); });
    return button;
  }

  function searchBox(state, onChange) {
    const input = h("input", { type: "search", id: "program-search", placeholder: "find a program by name",
      value: state.programQuery || "", autocomplete: "off" });
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const at = input.selectionStart;
        state.programQuery = input.value;
        onChange();
        const again = document.getElementById("program-search"); // the list was redrawn: keep typing in it
        if (again) { again.focus(); again.setSelectionRange(at, at); }
      }, 120);
    });
    return input;
  }

  function diffCell(d) {
    if (d === null) return h("td", { class: "num", text: "–" });
    return h("td", { class: `num diff ${d > 0 ? "worse" : d < 0 ? "better" : ""}`, text: `${d > 0 ? "+" : ""}${T.fmtSeconds(d)}` });
  }

  // The "Programs" panel; onChange redraws the page (a filter, a sort or a selection changed).
  T.programsPanel = function (state, list, onChange) {
    const { rows, total, a, b } = list;
    const head = ["program", `JCT ${a.name}`, ...(b ? [`JCT ${b.name}`, `${b.name} − ${a.name}`] : []), "status"];
    const body = rows.map((r) => {
      const tr = h("tr", { "data-program": r.id, class: r.id === state.program ? "selected" : null, title: r.id },
        h("td", { class: "program-name", "data-label": r.label, text: T.truncate(r.label, LABEL_CHARS) }),
        h("td", { class: "num jct-a", text: T.fmtSeconds(r.jctA) }),
        b ? [h("td", { class: "num jct-b", text: T.fmtSeconds(r.jctB) }), diffCell(r.diff)] : null,
        h("td", { text: r.status || "–" }));
      tr.addEventListener("click", () => { state.program = r.id; onChange(); });
      return tr;
    });
    return h("section", { id: "programs", class: "panel" },
      h("div", { class: "panel-head" }, h("h2", { text: `Programs (${total})` }),
        h("div", { class: "program-tools" }, searchBox(state, onChange), "sort ", sortSelect(state, a, b, onChange),
          orderButton(state, onChange), h("span", { id: "program-count", class: "muted", text: `${rows.length} of ${total}` }))),
      h("div", { class: "programs-scroll" },
        h("table", { class: "programs", id: "program-table" },
          h("thead", {}, h("tr", {}, head.map((c) => h("th", { text: c })))),
          h("tbody", {}, body))),
      rows.length ? null : h("p", { class: "hint", text: `No program matches “${state.programQuery}”.` }));
  };

  // The selected program if the list shows it, else the list's first; null for an empty list.
  T.selectedProgram = function (state, rows) {
    return rows.some((r) => r.id === state.program) ? state.program : rows.length ? rows[0].id : null;
  };
})(window.Tether);
