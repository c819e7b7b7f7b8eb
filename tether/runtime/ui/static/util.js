// DOM and SVG builders, number formats and colours shared by the views (window.Tether, no modules: the
// snapshot inlines every script into one file:// page).
"use strict";
window.Tether = window.Tether || {};
(function (T) {
  const SVG_NS = "http://www.w3.org/2000/svg";

  function build(el, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = v;
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  T.h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  T.s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  T.ENGINE = "_engine";
  T.PHASE_COLORS = { queued: "#cbd5e1", prefill: "#f59e0b", decode: "#3b82f6" };
  T.STATUS_COLORS = {
    pending: "#e2e8f0", running: "#93c5fd", ok: "#6ee7b7", error: "#fca5a5", cancelled: "#fcd34d",
  };
  T.PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d"];

  T.num = (v) => (typeof v === "number" && isFinite(v) ? v : null);

  T.fmtSeconds = function (s) {
    if (T.num(s) === null) return "–";
    const a = Math.abs(s);
    if (a === 0) return "0 s";
    if (a < 1e-3) return `${(s * 1e6).toFixed(0)} µs`;
    if (a < 1) return `${+(s * 1e3).toFixed(a < 0.01 ? 2 : 1)} ms`;
    if (a < 120) return `${+s.toFixed(a < 10 ? 3 : a < 100 ? 2 : 1)} s`;
    return `${Math.floor(s / 60)} min ${(s % 60).toFixed(0)} s`;
  };
  T.fmtInt = (n) => (T.num(n) === null ? "–" : Math.round(n).toLocaleString("en-US"));
  T.fmtPct = (r) => (T.num(r) === null ? "–" : `${(r * 100).toFixed(1)}%`);
  T.fmtTime = (epoch) =>
    T.num(epoch) === null ? "–" : new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  T.fmtValue = function (v) {
    if (typeof v === "number") return Number.isInteger(v) ? T.fmtInt(v) : String(+v.toPrecision(6));
    if (v === null || v === undefined) return "null";
    return typeof v === "string" ? v : JSON.stringify(v);
  };

  // Ticks 0, step, 2*step, ... <= max with a 1/2/5 step giving about `count` of them (whole steps for counts).
  T.ticks = function (max, count, whole = false) {
    if (!(max > 0)) return [0];
    const raw = whole ? Math.max(1, max / Math.max(1, count)) : max / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    for (let v = 0; v <= max + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  };

  T.truncate = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);
})(window.Tether);
