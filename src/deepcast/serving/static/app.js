// deepcast dashboard: draws GET /v1/models/{name}/monitor as SVG and refreshes itself.
// Query parameters: ?model=NAME (default the first model), ?refresh=SECONDS (default 5),
// ?window=N (the newest N actuals beside the forecast, default 96; the errors chart shows all
// that the endpoint returns, up to 200).
// Every string from the API goes into the page through textContent or setAttribute, never as
// markup.
"use strict";

(() => {
  const params = new URLSearchParams(window.location.search);
  const REFRESH_MS = Math.max(0.5, Number(params.get("refresh")) || 5) * 1000;
  // Errors and actuals fetched per refresh (?limit=, 10..5000).
  const LIMIT = Math.min(5000, Math.max(10, Math.floor(Number(params.get("limit")) || 200)));
  const WINDOW = Math.min(LIMIT, Math.max(2, Math.floor(Number(params.get("window")) || 96)));
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HOUR = 3600e3;
  const DAY = 24 * HOUR;
  const EVENT_TYPES = new Set(["published", "promoted", "activated", "drift", "retrain_started",
    "retrain_failed", "challenger_scored", "rejected"]);

  let model = params.get("model");
  let last = null; // the newest monitor view, redrawn on resize
  let updates = 0;
  let timer = null;
  let busy = false; // one refresh at a time; a model change during one asks for another
  let again = false;

  // -- small DOM helpers ---------------------------------------------------------------------
  function html(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const $ = (id) => document.getElementById(id);

  // Naive ISO timestamps are read as UTC, so ticks fall on whole hours and days of the data.
  function parseTime(text) {
    const s = String(text);
    return Date.parse(/([zZ]|[+-]\d\d:?\d\d)$/.test(s) ? s : `${s}Z`);
  }

  const pad = (n) => String(n).padStart(2, "0");
  const hhmm = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  const mmdd = (d) => `${d.toLocaleString("en", { month: "short", timeZone: "UTC" })} ${pad(d.getUTCDate())}`;
  const shortTime = (t) => { const d = new Date(t); return `${mmdd(d)} ${hhmm(d)}`; };

  function fmt(value, digits = 3) {
    const v = Number(value);
    if (!Number.isFinite(v)) return "–";
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toFixed(digits);
  }

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      throw new Error(`${url}: ${response.status} ${detail}`);
    }
    return response.json();
  }

  // -- scales and ticks -----------------------------------------------------------------------
  function niceTicks(lo, hi, count) {
    const raw = (hi - lo) / Math.max(1, count);
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
    const ticks = [];
    for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
    if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
    return { ticks, digits: Math.max(0, -Math.floor(Math.log10(step))) };
  }

  const TIME_STEPS = [60e3, 300e3, 900e3, 1800e3, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY, 365 * DAY];

  function timeTicks(t0, t1, count) {
    const step = TIME_STEPS.find((s) => (t1 - t0) / s <= count) || TIME_STEPS[TIME_STEPS.length - 1];
    const ticks = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
    return { ticks, step };
  }

  // -- one chart ------------------------------------------------------------------------------
  // spec: {lines: [{points: [[t, v]], cls}], bands: [{points: [[t, lo, hi]], cls}],
  //        dots: [{points, cls}], marks: [{t, cls, label}], zero: bool, yLabel, empty}
  function drawChart(node, spec) {
    const width = Math.max(320, node.clientWidth || 800);
    const height = Math.max(180, node.clientHeight || 260);
    node.setAttribute("viewBox", `0 0 ${width} ${height}`);
    node.replaceChildren();
    const m = { left: 64, right: 18, top: 22, bottom: 52 };
    const series = [...spec.lines, ...spec.dots];
    const times = [...series.flatMap((s) => s.points.map((p) => p[0])),
      ...spec.bands.flatMap((b) => b.points.map((p) => p[0]))];
    const values = [...series.flatMap((s) => s.points.map((p) => p[1])),
      ...spec.bands.flatMap((b) => b.points.flatMap((p) => [p[1], p[2]]))].filter(Number.isFinite);
    if (!times.length || !values.length) {
      node.append(svg("text", { x: width / 2, y: height / 2, class: "empty", "text-anchor": "middle" },
        spec.empty));
      return;
    }
    let [t0, t1] = [Math.min(...times), Math.max(...times)];
    if (t0 === t1) [t0, t1] = [t0 - HOUR, t1 + HOUR];
    let [v0, v1] = [Math.min(...values), Math.max(...values)];
    if (spec.zero) [v0, v1] = [Math.min(v0, 0), Math.max(v1, 0)];
    if (v0 === v1) [v0, v1] = [v0 - 1, v1 + 1];
    const yt = niceTicks(v0, v1, Math.max(2, Math.floor((height - m.top - m.bottom) / 40)));
    [v0, v1] = [yt.ticks[0], yt.ticks[yt.ticks.length - 1]];
    const x = (t) => m.left + ((t - t0) / (t1 - t0)) * (width - m.left - m.right);
    const y = (v) => height - m.bottom - ((v - v0) / (v1 - v0)) * (height - m.top - m.bottom);

    const grid = svg("g", { class: "grid" });
    for (const v of yt.ticks) {
      grid.append(svg("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }));
      grid.append(svg("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(yt.digits)));
    }
    const xt = timeTicks(t0, t1, Math.max(2, Math.floor((width - m.left - m.right) / 90)));
    let previousDay = null;
    for (const t of xt.ticks) {
      const d = new Date(t);
      grid.append(svg("line", { x1: x(t), x2: x(t), y1: m.top, y2: height - m.bottom }));
      const label = svg("text", { x: x(t), y: height - m.bottom + 16, "text-anchor": "middle" });
      const day = mmdd(d);
      label.append(svg("tspan", {}, xt.step >= DAY ? day : hhmm(d)));
      if (xt.step < DAY && day !== previousDay) {
        label.append(svg("tspan", { x: x(t), dy: 13 }, day));
      }
      previousDay = day;
      grid.append(label);
    }
    node.append(grid);
    node.append(svg("text", { class: "axis-title", x: m.left + (width - m.left - m.right) / 2,
      y: height - 4, "text-anchor": "middle" }, "time"));
    node.append(svg("text", { class: "axis-title", transform: `translate(14 ${m.top + (height - m.top - m.bottom) / 2}) rotate(-90)`,
      "text-anchor": "middle" }, spec.yLabel));
    if (spec.zero && v0 < 0 && v1 > 0) {
      node.append(svg("line", { class: "zero", x1: m.left, x2: width - m.right, y1: y(0), y2: y(0) }));
    }

    const path = (points) => points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    for (const band of spec.bands) {
      if (!band.points.length) continue;
      const upper = band.points.map((p) => [p[0], p[2]]);
      const lower = band.points.map((p) => [p[0], p[1]]).reverse();
      node.append(svg("path", { class: band.cls, d: `${path(upper)}L${path(lower).slice(1)}Z` }));
    }
    for (const line of spec.lines) {
      if (line.points.length) node.append(svg("path", { class: line.cls, d: path(line.points) }));
    }
    for (const dots of spec.dots) {
      const group = svg("g", { class: dots.cls });
      for (const p of dots.points) group.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5 }));
      node.append(group);
    }
    for (const mark of spec.marks) {
      if (!(mark.t >= t0 && mark.t <= t1)) continue;
      const group = svg("g", { class: mark.cls });
      group.append(svg("title", {}, mark.label));
      group.append(svg("line", { x1: x(mark.t), x2: x(mark.t), y1: m.top, y2: height - m.bottom }));
      group.append(svg("text", { x: x(mark.t) + 3, y: m.top - 6 }, mark.short || ""));
      node.append(group);
    }
  }

  function legend(id, items) {
    $(id).replaceChildren(...items.map(([cls, text]) => {
      const item = html("li");
      item.append(html("span", { class: `swatch ${cls}` }), document.createTextNode(text));
      return item;
    }));
  }

  // -- the panels -----------------------------------------------------------------------------
  function drawForecast(view) {
    const node = $("chart-forecast");
    const actuals = view.actuals.slice(-WINDOW).map((a) => [parseTime(a.timestamp), Number(a.value)]);
    const f = view.forecast;
    const band = Number(view.band) || 80;
    const steps = f ? f.forecast.map((s) => [parseTime(s.timestamp), Number(s.value),
      Number(s[`lo_${band}`]), Number(s[`hi_${band}`])]) : [];
    const origin = f ? parseTime(f.origin) : null;
    // A forecast older than the oldest actual shown (the monitor still catching up) would
    // stretch the time axis; it is named above the chart instead of drawn.
    const stale = f !== null && actuals.length > 0 && origin < actuals[0][0];
    if (stale) steps.length = 0;
    const atOrigin = actuals.find((a) => a[0] === origin);
    const line = atOrigin ? [atOrigin, ...steps] : steps;
    const target = view.target || "target";
    drawChart(node, {
      lines: [{ points: actuals, cls: "actual" }, { points: line, cls: "forecast" }],
      bands: [{ points: steps.filter((s) => Number.isFinite(s[2]) && Number.isFinite(s[3])).map((s) => [s[0], s[2], s[3]]), cls: "band" }],
      dots: [{ points: steps, cls: "forecast-dots" }],
      marks: origin === null || stale ? [] : [{ t: origin, cls: "origin", label: `forecast origin ${f.origin}`, short: "origin" }],
      yLabel: `${target} (units of the data)`,
      empty: "no observations yet: POST them to /v1/models/{name}/observations",
    });
    node.dataset.points = String(actuals.length);
    node.dataset.lastActual = view.actuals.length ? String(view.actuals[view.actuals.length - 1].timestamp) : "";
    node.dataset.origin = f ? String(f.origin) : "";
    $("forecast-note").textContent = !f ? "— no forecast yet"
      : stale ? `— the latest forecast (version ${f.version}, from ${shortTime(origin)}) is older than these actuals`
        : `— version ${f.version}, from ${shortTime(origin)}, ${steps.length} steps ahead`;
    legend("legend-forecast", [["actual", `actual ${target} (newest ${actuals.length})`],
      ["forecast", "latest forecast"], ["band", `${band}% interval`], ["origin", "forecast origin"]]);
  }

  function drawErrors(view) {
    const node = $("chart-errors");
    const byVersion = new Map();
    const marks = [];
    let previous = null;
    for (const e of view.errors) {
      const point = [parseTime(e.timestamp), Number(e.error)];
      const version = String(e.version);
      if (!byVersion.has(version)) byVersion.set(version, []);
      byVersion.get(version).push(point);
      if (previous !== null && version !== previous) {
        marks.push({ t: point[0], cls: "switch", label: `version ${version} live from ${e.timestamp}`, short: `v${version}` });
      }
      previous = version;
    }
    for (const alarm of view.alarms) {
      const at = alarm.detail && alarm.detail.at;
      if (!at) continue;
      const detector = alarm.detail.detector ? ` (${alarm.detail.detector})` : "";
      marks.push({ t: parseTime(at), cls: "drift", label: `drift alarm${detector} at ${at}, version ${alarm.version}`, short: "drift" });
    }
    const versions = [...byVersion.keys()];
    const palette = (i) => `v${i % 4}`;
    drawChart(node, {
      lines: versions.map((v, i) => ({ points: byVersion.get(v), cls: `error ${palette(i)}` })),
      bands: [],
      dots: versions.map((v, i) => ({ points: byVersion.get(v), cls: `error-dots ${palette(i)}` })),
      marks,
      zero: true,
      yLabel: `error in ${view.target || "target"} units`,
      empty: "no matured errors yet: they appear once the forecast steps have arrived",
    });
    node.dataset.points = String(view.errors.length);
    node.dataset.alarms = String(view.alarms.length);
    legend("legend-errors", [...versions.map((v, i) => [`error ${palette(i)}`, `version ${v}`]),
      ["drift", "drift alarm"], ["switch", "version change"]]);
  }

  function drawVersions(view) {
    const live = view.live_version === null || view.live_version === undefined ? "–" : String(view.live_version);
    const node = $("live-version");
    node.textContent = live;
    node.dataset.version = live;
    $("versions").replaceChildren(...view.versions.map((v) => html("span",
      { class: String(v) === live ? "version live" : "version", title: String(v) === live ? "live" : "" }, `v${v}`)));
  }

  function drawAttributions(view) {
    const body = $("attributions").querySelector("tbody");
    const cells = view.attributions || [];
    if (!cells.length) {
      const row = html("tr");
      row.append(html("td", { colspan: 4, class: "muted" }, "no attributions yet"));
      body.replaceChildren(row);
      return;
    }
    const top = Math.max(...cells.map((c) => Math.abs(Number(c.importance)) || 0)) || 1;
    body.replaceChildren(...cells.map((c) => {
      const row = html("tr");
      const bar = html("span", { class: "bar" });
      bar.style.width = `${(100 * Math.abs(Number(c.importance))) / top}%`;
      const barCell = html("td", { class: "barcell" });
      barCell.append(bar);
      row.append(html("td", {}, c.feature), html("td", {}, `t−${c.lag}`),
        html("td", { class: "num" }, fmt(c.importance)), barCell);
      return row;
    }));
  }

  function drawEvents(view) {
    const list = $("events");
    if (!view.events.length) {
      list.replaceChildren(html("li", { class: "muted" }, "no events yet"));
      return;
    }
    list.replaceChildren(...[...view.events].reverse().map((e) => {
      const item = html("li");
      const type = EVENT_TYPES.has(e.type) ? e.type : "other";
      const detail = Object.entries(e.detail || {}).map(([key, value]) =>
        `${key} ${typeof value === "number" ? fmt(value, 2)
          : typeof value === "string" ? value : JSON.stringify(value)}`).join(" · ");
      item.append(html("time", { datetime: e.time }, shortTime(parseTime(e.time))),
        html("span", { class: `tag ${type}` }, e.type),
        html("span", {}, e.version ? ` v${e.version} ` : " "),
        html("span", { class: "muted small", title: detail }, detail.length > 100 ? `${detail.slice(0, 100)}…` : detail));
      return item;
    }));
  }

  function draw(view) {
    drawVersions(view);
    drawForecast(view);
    drawErrors(view);
    drawAttributions(view);
    drawEvents(view);
  }

  // -- model choice and the refresh loop ------------------------------------------------------
  async function refreshModels() {
    const names = (await getJSON("/v1/models")).models.map((m) => String(m.name));
    const select = $("model");
    const shown = [...select.options].map((o) => o.value);
    if (shown.join("\n") !== names.join("\n")) {
      select.replaceChildren(...names.map((n) => { const o = html("option", { value: n }, n); return o; }));
    }
    if (!names.includes(model)) model = names.length ? names[0] : null;
    select.value = model || "";
    return model;
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(tick, delay);
  }

  async function tick() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const name = await refreshModels();
      if (name === null) {
        $("status").textContent = "no models in the store yet";
      } else {
        last = await getJSON(`/v1/models/${encodeURIComponent(name)}/monitor?limit=${LIMIT}`);
        draw(last);
        updates += 1;
        document.body.dataset.updates = String(updates);
        $("status").textContent = `updated ${new Date().toLocaleTimeString()} · refresh every ${REFRESH_MS / 1000} s`;
        $("status").classList.remove("error");
      }
    } catch (error) {
      $("status").textContent = `update failed (${error.message}); retrying`;
      $("status").classList.add("error");
    } finally {
      busy = false;
      schedule(again ? 0 : REFRESH_MS);
      again = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("model").addEventListener("change", (event) => {
      model = event.target.value;
      const url = new URL(window.location.href);
      url.searchParams.set("model", model);
      window.history.replaceState(null, "", url);
      last = null;
      schedule(0);
    });
    let resizing = null;
    window.addEventListener("resize", () => {
      window.clearTimeout(resizing);
      resizing = window.setTimeout(() => { if (last) draw(last); }, 150);
    });
    tick();
  });
})();
