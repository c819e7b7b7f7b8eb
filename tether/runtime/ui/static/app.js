// Routing (#/ and #/runs/<id>), the JSON API, the live stream, the error banner and the snapshot mode
// (window.TETHER_SNAPSHOT: the run's payload inlined by `tether ui --snapshot`, no server).
"use strict";
(function (T) {
  const state = {
    snapshot: null, runId: null, payload: null, models: null, items: new Map(), selected: null,
    trace: null, policyA: null, policyB: null, dagOpen: new Map(), live: null, route: 0,
  };
  T.state = state;

  const app = () => document.getElementById("app");

  T.showError = function (message) {
    const banner = document.getElementById("error-banner");
    banner.textContent = message;
    banner.hidden = false;
    document.body.dataset.state = "error";
  };
  function clearBanners() {
    for (const id of ["error-banner", "notice"]) {
      const el = document.getElementById(id);
      el.hidden = true;
      el.textContent = "";
    }
  }
  function notice(message) {
    const el = document.getElementById("notice");
    el.textContent = message;
    el.hidden = !message;
  }

  async function getJSON(url) {
    let response;
    try {
      response = await fetch(url, { cache: "no-store" });
    } catch (err) {
      throw new Error(`cannot reach the tether ui server (${err.message})`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const err = body && body.error;
      throw new Error(err && err.message ? err.message : `${response.status} ${response.statusText} from ${url}`);
    }
    return body;
  }

  T.exportLinks = function (state) {
    const id = state.payload.meta.run_id;
    if (state.snapshot) {
      const text = Object.entries(state.payload.traces).flatMap(([name, events]) => events.map((e) =>
        JSON.stringify(Object.keys(state.payload.traces).length > 1 ? { trace: name, ...e } : e))).join("\n");
      const url = URL.createObjectURL(new Blob([text + "\n"], { type: "application/x-ndjson" }));
      const files = { chrome: "chrome.json", "otlp-json": "otlp.json" };
      const inlined = Object.entries(state.snapshot.exports || {}).map(([fmt, body]) =>
        T.h("a", { id: `export-${fmt}`, download: `${id}.${files[fmt] || fmt}`, text: fmt,
          href: URL.createObjectURL(new Blob([body], { type: "application/json" })) }));
      return [...inlined, T.h("a", { id: "export-jsonl", href: url, download: `${id}.jsonl`, text: "jsonl" })];
    }
    return ["chrome", "otlp-json", "jsonl"].map((fmt) =>
      T.h("a", { id: `export-${fmt}`, href: `api/runs/${encodeURIComponent(id)}/export?format=${fmt}`, download: "", text: fmt }));
  };

  // Re-render the current run at most every 200 ms while live events arrive.
  let pending = null;
  T.render = function () {
    if (pending) { clearTimeout(pending); pending = null; }
    if (!state.payload) return;
    T.renderRunView(app(), state);
    document.body.dataset.state = "ready";
  };
  function scheduleRender() {
    if (!pending) pending = setTimeout(() => { pending = null; T.render(); }, 200);
  }

  function stopLive() {
    if (state.live) state.live.close();
    state.live = null;
    document.body.dataset.live = "off";
  }

  function startLive(runId) {
    stopLive();
    const offsets = encodeURIComponent(JSON.stringify(state.payload.offsets || {}));
    const source = new EventSource(`api/runs/${encodeURIComponent(runId)}/live?offsets=${offsets}`);
    state.live = source;
    document.body.dataset.live = "on";
    const current = () => state.live === source && state.runId === runId;
    source.addEventListener("run", (m) => { if (current()) { state.payload.meta = JSON.parse(m.data); scheduleRender(); } });
    source.addEventListener("events", (m) => {
      if (!current()) return;
      const data = JSON.parse(m.data);
      const list = state.payload.traces[data.trace] || (state.payload.traces[data.trace] = []);
      for (const e of data.events) list.push(e);
      state.payload.offsets[data.trace] = data.offset;
      scheduleRender();
    });
    source.addEventListener("trace-error", (m) => {
      if (!current()) return;
      stopLive();
      T.showError(JSON.parse(m.data).error.message);
    });
    source.addEventListener("end", (m) => {
      if (!current()) return;
      state.payload.meta = JSON.parse(m.data);
      stopLive();
      T.render();
    });
    source.onerror = () => {
      if (!current()) return;
      stopLive(); // reconnect from the offsets received so far, not the first ones
      setTimeout(() => { if (state.runId === runId && state.payload.meta.status === "running" && !state.live) startLive(runId); }, 1000);
    };
  }

  function showPayload(payload) {
    state.payload = payload;
    if (payload.truncated && payload.truncated.length) {
      notice(`The last line of ${payload.truncated.join(", ")} was cut (a crash mid-write): it is left out.`);
    }
    T.render();
  }

  async function showRun(runId, seq) {
    state.runId = runId;
    document.title = `tether ui · ${runId}`;
    let payload;
    try {
      payload = await getJSON(`api/runs/${encodeURIComponent(runId)}`);
    } catch (err) {
      if (seq !== state.route) return;
      app().replaceChildren(T.h("section", { id: "run-view" }, T.h("a", { href: "#/", id: "back", text: "← runs" }),
        T.h("h1", { text: runId })));
      T.showError(err.message);
      return;
    }
    if (seq !== state.route) return;
    showPayload(payload);
    if (payload.meta.status === "running") startLive(runId);
  }

  let listTimer = null;
  async function showList(seq) {
    document.title = "tether ui · runs";
    try {
      const data = await getJSON("api/runs");
      if (seq !== state.route) return;
      T.renderRunList(app(), data);
      document.body.dataset.state = "ready";
      if (data.runs.some((r) => r.status === "running")) listTimer = setTimeout(() => showList(seq), 3000);
    } catch (err) {
      if (seq === state.route) T.showError(err.message);
    }
  }

  function route() {
    const seq = ++state.route;
    stopLive();
    clearTimeout(listTimer);
    clearBanners();
    document.body.dataset.state = "loading";
    state.payload = null;
    state.selected = null;
    const m = location.hash.match(/^#\/runs\/(.+)$/);
    if (m) showRun(decodeURIComponent(m[1]), seq);
    else showList(seq);
  }

  function onClick(event) {
    const target = event.target.closest("[data-key]");
    if (!target || !state.items.has(target.dataset.key)) return;
    for (const el of document.querySelectorAll(".selected")) el.classList.remove("selected");
    state.selected = target.dataset.key;
    for (const el of document.querySelectorAll(`[data-key="${CSS.escape(state.selected)}"]`)) el.classList.add("selected");
    T.showDetails(state.items.get(state.selected));
  }

  function boot() {
    document.addEventListener("click", onClick);
    let resize = null;
    window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(T.render, 150); });
    window.addEventListener("unhandledrejection", (e) => T.showError(`error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`));
    window.addEventListener("error", (e) => T.showError(`error: ${e.message}`));
    state.snapshot = window.TETHER_SNAPSHOT ? window.TETHER_SNAPSHOT.snapshot || { created: null } : null;
    if (state.snapshot) {
      state.runId = window.TETHER_SNAPSHOT.meta.run_id;
      document.title = `tether ui · ${state.runId} (snapshot)`;
      showPayload(window.TETHER_SNAPSHOT);
      return;
    }
    window.addEventListener("hashchange", route);
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})(window.Tether);
