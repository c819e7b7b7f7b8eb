// The details panel (#details): the clicked node's or span's attributes, gen_ai.* first, its token counts
// and the prompt / output text when recorded.
"use strict";
(function (T) {
  const TEXT_KEYS = ["gen_ai.input.messages", "gen_ai.output.text"];
  const TOKEN_KEYS = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens"];

  function table(rows, cls) {
    return T.h("table", { class: `attrs ${cls || ""}` }, rows.map(([k, v]) =>
      T.h("tr", { "data-attr": k }, T.h("th", { text: k }), T.h("td", { text: T.fmtValue(v) }))));
  }

  function attrRows(attrs) {
    const keys = Object.keys(attrs).filter((k) => !TEXT_KEYS.includes(k));
    const genai = keys.filter((k) => k.startsWith("gen_ai.")).sort();
    const rest = keys.filter((k) => !k.startsWith("gen_ai.")).sort();
    return [...genai, ...rest].map((k) => [k, attrs[k]]);
  }

  function messages(text) {
    let parsed = null;
    try { parsed = JSON.parse(text); } catch (_) { /* a plain prompt */ }
    if (!Array.isArray(parsed)) return T.h("pre", { class: "text", text });
    return T.h("div", { class: "messages" }, parsed.map((m) => T.h("div", { class: "message" },
      T.h("span", { class: "role", text: (m && m.role) || "?" }),
      T.h("pre", { class: "text", text: typeof (m && m.content) === "string" ? m.content : JSON.stringify(m && m.content !== undefined ? m.content : m, null, 1) }))));
  }

  function texts(attrs) {
    const out = [];
    if (typeof attrs["gen_ai.input.messages"] === "string") {
      out.push(T.h("h4", { text: "gen_ai.input.messages" }), messages(attrs["gen_ai.input.messages"]));
    }
    if (typeof attrs["gen_ai.output.text"] === "string") {
      out.push(T.h("h4", { text: "gen_ai.output.text" }), T.h("pre", { class: "text output", text: attrs["gen_ai.output.text"] }));
    }
    return out;
  }

  function eventBlock(title, e, origin) {
    const when = T.num(e.start) === null  // an instant has one time, not a start and an end
      ? [["at", `+${T.fmtSeconds(e.ts - origin)}`]]
      : [["start", `+${T.fmtSeconds(e.start - origin)}`], ["end", `+${T.fmtSeconds(e.ts - origin)}`]];
    const rows = [["kind", e.kind], ...when];
    return T.h("section", { class: "event", "data-event": e.kind },
      T.h("h3", { text: title }), table(rows, "timing"), table(attrRows(e.attrs)), texts(e.attrs));
  }

  function spanView(item) {
    const s = item.span, r = s.request;
    const duration = `${T.fmtSeconds(s.end - s.start)}${s.open ? " so far (unfinished)" : ""}`;
    const head = [["program", s.program], ["node", s.node], ["duration", duration]];
    for (const ph of s.phases || []) head.push([ph.phase, T.fmtSeconds(ph.end - ph.start)]);
    const title = s.kind === "tool" ? "tool call" : s.kind === "load" ? "model load"
      : `${s.source === "engine" ? "LLM request" : "LLM turn"}${s.open ? " (unfinished)" : ""}`;
    const out = [T.h("h2", { text: `${title} · ${s.node ?? s.event.attrs.request_id ?? s.event.attrs.model ?? ""}` }), table(head, "summary"),
      eventBlock(s.event.kind, s.event, item.origin)];
    if (r && r.finished && r.finished !== s.event) out.push(eventBlock("engine request (llm_finished)", r.finished, item.origin));
    return out;
  }

  function nodeView(item) {
    const n = item.node;
    const tokens = T.nodeTokens(n);
    const end = n.endEvent ? n.endEvent.attrs : {};
    const head = [["program", item.program.id], ["kind", n.kind], ["tool", n.tool], ["status", n.status],
      ["deps", n.deps.join(", ") || "–"], ["duration", T.fmtSeconds(T.num(end.duration_s))]];
    if (end.reason) head.push(["reason", end.reason]);
    if (end.error) head.push(["error", `${end.error_type || ""} ${end.error}`.trim()]);
    const out = [T.h("h2", { text: `node · ${n.id}` }), table(head.filter(([, v]) => v !== null && v !== undefined), "summary")];
    if (n.turns.length) out.push(T.h("h3", { text: "tokens (its llm_turn events)" }), table(TOKEN_KEYS.map((k) => [k, tokens[k]]), "tokens"));
    n.turns.forEach((e, i) => out.push(eventBlock(`llm_turn ${i + 1}`, e, item.origin)));
    n.tools.forEach((e, i) => out.push(eventBlock(`tool_call ${i + 1}`, e, item.origin)));
    if (end.output !== undefined) out.push(T.h("h4", { text: "output" }), T.h("pre", { class: "text", text: T.fmtValue(end.output) }));
    return out;
  }

  function bandView(item) {
    const b = item.band;
    return [T.h("h2", { text: `pinned · ${b.program}` }),
      table([["duration", T.fmtSeconds(b.end - b.start)], ["ended by", b.endAction || "(still pinned)"]], "summary"),
      eventBlock(`kv ${b.event.attrs.action}`, b.event, item.origin)];
  }

  T.showDetails = function (item) {
    const panel = document.getElementById("details");
    if (!panel) return;
    panel.replaceChildren();
    if (!item) {
      panel.append(T.h("p", { class: "hint", text: "Click a node or a bar to see its attributes." }));
      return;
    }
    const body = item.type === "node" ? nodeView(item) : item.type === "span" ? spanView(item)
      : item.type === "band" ? bandView(item) : [T.h("h2", { text: `kv · ${item.marker.action}` }), eventBlock("kv", item.marker.event, item.origin)];
    panel.append(...body.flat());
    panel.dataset.key = item.key;
  };
})(window.Tether);
