// Altair system monitor: polls api/system-metrics once a second and fills
// the page. No framework, no inline code (the page's CSP forbids it), and
// nothing is fetched from anywhere but the gateway that served the page.
"use strict";

(function () {
  const API = "api/system-metrics";
  const INTERVAL_MS = 1000;
  const HISTORY = 60; // points in each sparkline
  const TOKEN_KEY = "altair-admin-token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const NA = "n/a";

  const $ = (id) => document.getElementById(id);
  const series = { rps: [], p95: [] };
  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let timer = 0;

  // Formatting. Every formatter answers "n/a" for null or undefined: a
  // figure the platform cannot provide, or a rate before the first window.
  const missing = (v) => v === null || v === undefined || Number.isNaN(v);
  const count = (v) => (missing(v) ? NA : Math.round(v).toLocaleString("en-US"));
  function fixed(v, digits) {
    if (missing(v)) return NA;
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function rate(v) {
    if (missing(v)) return NA;
    return v >= 100 ? count(v) : fixed(v, v >= 10 ? 1 : 2);
  }
  const percent = (v, digits = 1) => (missing(v) ? NA : fixed(v, digits) + " %");
  const share = (v) => (missing(v) ? NA : fixed(v * 100, v > 0 && v < 0.001 ? 3 : 2) + " %");
  function bytes(v) {
    if (missing(v)) return NA;
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return fixed(v, i === 0 || v >= 100 ? 0 : 1) + " " + units[i];
  }
  function seconds(v) {
    if (missing(v)) return NA;
    if (v === 0) return "0 ms";
    if (v < 0.001) return fixed(v * 1e6, 0) + " µs";
    if (v < 1) return fixed(v * 1000, v < 0.01 ? 2 : 1) + " ms";
    return fixed(v, 2) + " s";
  }
  function uptime(v) {
    if (missing(v)) return NA;
    const d = Math.floor(v / 86400), h = Math.floor((v % 86400) / 3600);
    const m = Math.floor((v % 3600) / 60), s = Math.floor(v % 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + s + "s";
    return s + "s";
  }

  function text(id, value) {
    const el = $(id);
    if (el && el.textContent !== value) el.textContent = value;
  }

  // bar sets a bar's fill (0–100) and colour; null empties it.
  function bar(id, pct) {
    const el = $(id);
    if (!el) return;
    const p = missing(pct) ? 0 : Math.max(0, Math.min(100, pct));
    el.style.width = p.toFixed(1) + "%";
    el.className = p >= 90 ? "bad" : p >= 75 ? "warn" : "";
  }

  function push(list, v) {
    list.push(missing(v) ? null : v);
    if (list.length > HISTORY) list.shift();
  }

  // spark draws the values as a line across the whole width, with the area
  // under it; the newest value is at the right edge.
  function spark(id, values) {
    const svg = $(id);
    if (!svg) return;
    const vals = values.filter((v) => v !== null);
    if (vals.length < 2) {
      svg.replaceChildren();
      return;
    }
    const max = Math.max(...vals, 1e-9);
    const step = 120 / (vals.length - 1);
    const pts = vals.map((v, i) => (i * step).toFixed(1) + "," + (30 - (v / max) * 27).toFixed(1));
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("class", "line");
    const area = document.createElementNS(SVG_NS, "polygon");
    area.setAttribute("points", "0,32 " + pts.join(" ") + " 120,32");
    area.setAttribute("class", "area");
    svg.replaceChildren(area, line);
  }

  function cell(value, cls) {
    const td = document.createElement("td");
    td.textContent = value;
    if (cls) td.className = cls;
    return td;
  }

  function pill(value, kind, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    const span = document.createElement("span");
    span.className = "pill " + kind;
    span.textContent = value;
    td.appendChild(span);
    return td;
  }

  function emptyRow(cols, message) {
    const tr = document.createElement("tr");
    const td = cell(message, "muted empty");
    td.colSpan = cols;
    tr.appendChild(td);
    return tr;
  }

  function renderBackends(pools) {
    const rows = [];
    for (const p of pools || []) {
      for (const b of p.backends || []) {
        const tr = document.createElement("tr");
        tr.dataset.backend = b.url;
        const pool = cell(p.name, "name");
        if (p.panic) {
          const tag = document.createElement("span");
          tag.className = "pill warn";
          tag.textContent = "panic";
          pool.append(" ", tag);
        }
        tr.appendChild(pool);
        tr.appendChild(cell(b.url, "mono"));
        let state = ["healthy", "ok"];
        if (b.ejected) state = ["ejected", "warn"];
        else if (!b.healthy) state = ["unhealthy", "bad"];
        tr.appendChild(pill(state[0], state[1], "state"));
        const breaker = b.breaker || "closed";
        tr.appendChild(pill(breaker, breaker === "closed" ? "ok" : breaker === "open" ? "bad" : "warn", "breaker"));
        tr.appendChild(cell(count(b.weight), "num"));
        tr.appendChild(cell(count(b.in_flight), "num"));
        tr.appendChild(cell(count(b.requests), "num"));
        tr.appendChild(cell(count(b.failures), "num" + (b.failures > 0 ? " warn-text" : "")));
        rows.push(tr);
      }
    }
    if (rows.length === 0) rows.push(emptyRow(8, "no backends configured"));
    document.querySelector("#backends tbody").replaceChildren(...rows);
  }

  function renderRoutes(routes) {
    const rows = (routes || []).map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.route = r.name;
      const name = cell(r.name, "name");
      if (r.require_auth) {
        const tag = document.createElement("span");
        tag.className = "pill neutral";
        tag.textContent = "auth";
        name.append(" ", tag);
      }
      tr.appendChild(name);
      tr.appendChild(cell(r.upstream, ""));
      tr.appendChild(cell(rate(r.requests_per_second), "num"));
      tr.appendChild(cell(count(r.requests), "num"));
      const c = r.responses || {};
      for (const k of ["2xx", "3xx", "4xx", "5xx"]) {
        tr.appendChild(cell(count(c[k] || 0), "num" + (k === "5xx" && c[k] > 0 ? " bad-text" : "")));
      }
      tr.appendChild(cell(share(r.error_rate), "num"));
      tr.appendChild(cell(count(r.in_flight), "num"));
      return tr;
    });
    if (rows.length === 0) rows.push(emptyRow(10, "no routes configured"));
    document.querySelector("#routes tbody").replaceChildren(...rows);
  }

  // renderClasses draws the responses since start as one stacked bar.
  function renderClasses(responses) {
    const classes = ["2xx", "3xx", "4xx", "5xx", "1xx", "other"];
    const total = classes.reduce((n, k) => n + (responses[k] || 0), 0);
    const parts = [];
    const legend = [];
    for (const k of classes) {
      const n = responses[k] || 0;
      if (n === 0) continue;
      const seg = document.createElement("div");
      seg.className = "c" + k;
      seg.style.width = ((n / total) * 100).toFixed(2) + "%";
      seg.title = k + ": " + count(n);
      parts.push(seg);
      legend.push(k + " " + count(n));
    }
    $("classes").replaceChildren(...parts);
    text("classes-legend", legend.length ? legend.join(" · ") : "no responses yet");
  }

  function render(d) {
    const sys = d.system || {}, rt = d.runtime || {}, tr = d.traffic || {};
    const lat = tr.latency_seconds || {};
    text("version", d.version || "dev");
    text("uptime", uptime(d.uptime_seconds));
    text("window", missing(d.window_seconds) ? "" : "rates over the last " + fixed(d.window_seconds, 1) + " s");
    text("platform", [sys.os, sys.arch].filter(Boolean).join("/") + (sys.num_cpu ? " · " + sys.num_cpu + " CPUs" : ""));

    text("rps", rate(tr.requests_per_second));
    text("requests", count(tr.requests_total));
    text("p50", seconds(lat.p50));
    text("p95", seconds(lat.p95));
    text("p99", seconds(lat.p99));
    text("errors", share(tr.error_rate));
    $("errors").className = "big" + (tr.error_rate >= 0.05 ? " bad-text" : tr.error_rate > 0 ? " warn-text" : "");
    renderClasses(tr.responses || {});
    text("inflight", count(tr.in_flight));
    text("connections", count(tr.connections));
    text("ready", d.ready ? "ready" : "not ready");

    push(series.rps, tr.requests_per_second);
    push(series.p95, lat.p95);
    spark("rps-spark", series.rps);
    spark("lat-spark", series.p95);

    text("cpu-proc", percent(sys.process_cpu_percent));
    bar("cpu-proc-bar", sys.process_cpu_percent);
    text("cpu-sys", percent(sys.system_cpu_percent));
    bar("cpu-sys-bar", sys.system_cpu_percent);

    text("rss", bytes(sys.process_rss_bytes));
    text("heap", bytes(rt.heap_inuse_bytes));
    text("gosys", bytes(rt.sys_bytes));
    const memUsed = missing(sys.memory_total_bytes) || missing(sys.memory_available_bytes)
      ? null : sys.memory_total_bytes - sys.memory_available_bytes;
    text("mem-used", bytes(memUsed));
    text("mem-total", bytes(sys.memory_total_bytes));
    bar("mem-bar", memUsed === null ? null : (memUsed / sys.memory_total_bytes) * 100);

    text("disk-used", percent(sys.disk_used_percent));
    bar("disk-bar", sys.disk_used_percent);
    text("disk-free", bytes(sys.disk_free_bytes));
    text("disk-total", bytes(sys.disk_total_bytes));

    text("goroutines", count(rt.goroutines));
    text("gomaxprocs", count(rt.gomaxprocs));
    text("gc-count", count(rt.gc_count));
    text("gc-last", seconds(rt.gc_last_pause_seconds));

    renderBackends(d.upstreams);
    renderRoutes(d.routes);

    const e = d.edge || {};
    text("blocked", count(e.blocked_ips));
    text("blocks-total", count(e.blocks_total));
    text("lists", count(e.allow_entries) + " / " + count(e.deny_entries));
    text("rl-keys", count(e.rate_limit_keys));
    const rl = d.config_reloads || {};
    text("reloads-ok", count(rl.success));
    text("reloads-bad", count(rl.failure));
    text("reload-error", rl.last_error || "none");
  }

  function setStatus(label, kind) {
    const el = $("status");
    el.textContent = label;
    el.className = "status " + (kind || "");
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(tick, INTERVAL_MS);
  }

  function askToken(rejected) {
    const form = $("auth");
    $("auth-msg").textContent = rejected
      ? "That token was not accepted. Enter the admin token (ADMIN_TOKEN)."
      : "This gateway serves its metrics only with the admin token (ADMIN_TOKEN). It is kept in this tab's session storage and sent to this gateway only.";
    form.hidden = false;
    $("auth-token").focus();
  }

  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("auth-token").value.trim();
    $("auth-token").value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    $("auth").hidden = true;
    tick();
  });

  async function tick() {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    try {
      const res = await fetch(API, { headers, cache: "no-store", credentials: "omit" });
      if (res.status === 401) {
        setStatus("token needed", "warn");
        askToken(token !== "");
        return; // polling resumes when a token is entered
      }
      if (!res.ok) {
        setStatus("HTTP " + res.status, "bad");
      } else {
        render(await res.json());
        setStatus("live", "ok");
      }
    } catch (err) {
      setStatus("offline", "bad");
    }
    schedule();
  }

  tick();
})();
