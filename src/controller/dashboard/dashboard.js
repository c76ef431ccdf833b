/* luaparallel dashboard: the controller serves this file (compiled in).
   It listens to /api/events (Server-Sent Events, about one a second) and
   draws each state: engines table, throughput chart, task stream, errors.
   No library: the DOM and two canvases. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const WINDOW = 60;                        // seconds shown by the task stream
  const gone = new Map();                   // id -> last row of engines that left
  let last = null;                          // the latest state
  const opened = new Set();                 // msg_ids of the errors shown open

  function bytes(n) {
    if (n === undefined || n === null) return "–";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function ago(ms) {
    if (ms === undefined) return "–";
    return ms < 1000 ? ms + " ms ago" : (ms / 1000).toFixed(1) + " s ago";
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function renderEngines(state) {
    const body = $("engines").tBodies[0];
    const engines = state.status.engines || [];
    const failed = state.failed || {};
    const live = new Set(engines.map((e) => e.id));
    for (const [id, row] of Array.from(gone)) if (live.has(id)) gone.delete(id);
    if (last) for (const e of last.status.engines || []) if (!live.has(e.id)) gone.set(e.id, e);
    body.textContent = "";
    const rows = engines.map((e) => [e, false]).concat(Array.from(gone.values()).map((e) => [e, true]));
    rows.sort((a, b) => a[0].id - b[0].id);
    for (const [e, left] of rows) {
      const row = body.insertRow();
      row.dataset.id = e.id;
      if (left) row.className = "gone";
      cell(row, e.id, "num");
      cell(row, e.host);
      cell(row, e.pid, "num");
      const state = left ? "gone" : e.state;
      const badge = document.createElement("span");
      badge.className = "state " + state;
      badge.textContent = state;
      row.insertCell().appendChild(badge);
      cell(row, e.queue, "num");
      cell(row, bytes(e.rss), "num");
      cell(row, left ? "–" : ago(e.heartbeat_age_msec), "num");
      cell(row, (e.tasks_done || 0) + (e.direct_done || 0), "num");
      cell(row, failed[e.id] || 0, "num");
      cell(row, (e.registered || "").replace("T", " ").replace(/\.\d+Z$/, " UTC"));
    }
  }

  // A canvas sized to its box in device pixels; returns its 2D context.
  function context(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = "11px system-ui, sans-serif";
    return g;
  }

  function nice(max) {
    if (max <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  function drawThroughput(state) {
    const canvas = $("throughput");
    const g = context(canvas);
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const left = 48, right = 44, top = 10, bottom = 22;
    const points = (state.throughput || []).slice(-120);
    const now = state.time, span = 120;
    const peak = points.reduce((m, p) => Math.max(m, p[1]), 0);
    const waitPeak = points.reduce((m, p) => Math.max(m, p[2]), 0);
    const ymax = nice(peak), wmax = nice(waitPeak);
    const x = (t) => left + (W - left - right) * (1 - (now - t) / span);
    const y = (v, m) => top + (H - top - bottom) * (1 - v / m);
    g.strokeStyle = "#e3e6eb"; g.fillStyle = "#6b7280"; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = ymax * i / 4, yy = Math.round(y(v, ymax)) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(W - right, yy); g.stroke();
      g.textAlign = "right"; g.fillText(v >= 100 ? v.toFixed(0) : +v.toFixed(1), left - 6, yy + 4);
      g.textAlign = "left"; g.fillText(+(wmax * i / 4).toFixed(1), W - right + 6, yy + 4);
    }
    g.textAlign = "center";
    for (let s = 0; s <= span; s += 30) g.fillText(s ? "-" + s + " s" : "now", x(now - s), H - 6);
    function line(index, max, color) {
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      points.forEach((p, i) => { const px = x(p[0]), py = y(p[index], max);
                                 if (i) g.lineTo(px, py); else g.moveTo(px, py); });
      g.stroke();
    }
    line(2, wmax, "#d98b19");
    line(1, ymax, "#2c6fd1");
    canvas.dataset.peak = peak.toFixed(2);
    canvas.dataset.points = points.length;
    const current = points.length ? points[points.length - 1][1] : 0;
    $("rate").textContent = current.toFixed(1) + " replies/s, peak " + peak.toFixed(1);
  }

  function drawStream(state) {
    const canvas = $("stream");
    const engines = (state.status.engines || []).map((e) => e.id);
    for (const t of state.tasks || []) if (!engines.includes(t.engine)) engines.push(t.engine);
    engines.sort((a, b) => a - b);
    const rowH = 22, top = 4, bottom = 20, left = 70, right = 10;
    canvas.style.height = (top + bottom + Math.max(1, engines.length) * rowH) + "px";
    const g = context(canvas);
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const now = state.time;
    const x = (t) => left + (W - left - right) * (1 - (now - t) / WINDOW);
    g.fillStyle = "#6b7280"; g.textAlign = "right";
    engines.forEach((id, i) => {
      const yy = top + i * rowH;
      g.fillText("engine " + id, left - 8, yy + rowH / 2 + 4);
      g.fillStyle = i % 2 ? "#fafbfc" : "#f2f4f7"; g.fillRect(left, yy, W - left - right, rowH);
      g.fillStyle = "#6b7280";
    });
    g.textAlign = "center";
    for (let s = 0; s <= WINDOW; s += 10) g.fillText(s ? "-" + s + " s" : "now", x(now - s), H - 5);
    let bars = 0;
    // Errors last, so that one red bar is not hidden under green ones
    const tasks = (state.tasks || []).filter((t) => t.ok)
      .concat((state.tasks || []).filter((t) => !t.ok));
    for (const t of tasks) {
      if (t.end < now - WINDOW) continue;
      const row = engines.indexOf(t.engine);
      const x0 = Math.max(left, x(t.start)), x1 = Math.min(W - right, x(t.end));
      g.fillStyle = t.ok ? "#2f9e6e" : "#cf3f3f";
      g.fillRect(x0, top + row * rowH + 3, Math.max(t.ok ? 1.5 : 3, x1 - x0), rowH - 6);
      bars++;
    }
    canvas.dataset.bars = bars;
    $("stream-note").textContent = state.store
      ? bars + " replies in the window; green ok, red error"
      : "no task store (--no-db): the stream and the errors need it";
  }

  function renderErrors(state) {
    const box = $("errors");
    const errors = (state.errors || []).slice().reverse();
    box.textContent = "";
    if (!errors.length) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = state.store ? "none" : "no task store (--no-db)";
      box.appendChild(p);
      return;
    }
    for (const e of errors) {
      const d = document.createElement("details");
      d.className = "error";
      d.open = opened.has(e.msg_id);
      d.addEventListener("toggle", () => {
        if (d.open) opened.add(e.msg_id); else opened.delete(e.msg_id);
      });
      const s = document.createElement("summary");
      const name = document.createElement("span");
      name.className = "ename";
      name.textContent = e.ename;
      s.appendChild(name);
      s.appendChild(document.createTextNode(" on engine " + e.engine + " (" + e.type + ", "
        + new Date(e.time * 1000).toLocaleTimeString() + "): " + e.evalue));
      d.appendChild(s);
      const pre = document.createElement("pre");
      pre.textContent = e.traceback || "(no traceback)";
      d.appendChild(pre);
      box.appendChild(d);
    }
  }

  function update(state) {
    renderEngines(state);
    drawThroughput(state);
    drawStream(state);
    renderErrors(state);
    const st = state.status;
    const engines = st.engines || [];
    const busy = engines.filter((e) => e.state === "busy").length;
    const total = engines.reduce((n, e) => n + (e.tasks_done || 0) + (e.direct_done || 0), 0);
    $("unassigned").textContent = st.unassigned;
    $("busy").textContent = busy;
    $("total").textContent = total;
    $("scheme").textContent = "(" + st.scheme + ", hwm " + st.hwm + ")";
    $("summary").textContent = engines.length + " engine" + (engines.length === 1 ? "" : "s")
      + ", " + busy + " busy, " + st.unassigned + " unassigned";
    last = state;
  }

  const source = new EventSource("api/events");
  source.onopen = () => { $("live").textContent = "live"; $("live").classList.remove("off"); };
  source.onerror = () => { $("live").textContent = "offline"; $("live").classList.add("off"); };
  source.onmessage = (event) => update(JSON.parse(event.data));
  window.addEventListener("resize", () => { if (last) update(last); });
})();
