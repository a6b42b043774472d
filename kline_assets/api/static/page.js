/* The features page: pick a run, a scope and a range; draw mean, EMA and Bollinger bands with
 * KlineChart and list the same rows below. Everything comes from the JSON API of this service. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const MAX_PAGES = 40;  // 40 × 5000 values: far beyond a month of one scope
  const chart = KlineChart.create($("chart"), {timeZone: "Asia/Tokyo"});
  let loaded = 0;

  const getJSON = KlineApi.getJSON;
  const allPages = (url) => KlineApi.allPages(url, MAX_PAGES);
  const status = (text, error) => KlineApi.status($("status"), text, error);

  function option(value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text;
    return o;
  }

  function tokyoParts(iso) {  // '2025-10-31T23:45:00+09:00' → ['2025-10-31', '23:45']
    return [iso.slice(0, 10), iso.slice(11, 16)];
  }

  let scopes = [];

  async function loadRuns() {
    const runs = (await getJSON("/api/runs/?limit=1000")).results;
    const select = $("run");
    select.replaceChildren(...runs.map((r) => option(r.run_id, `${r.run_id} (${r.months.join(", ")})`)));
    const preferred = runs.find((r) => r.run_id === "live") || runs[0];
    if (!preferred) throw new Error("no run has data yet: materialize the price assets first");
    select.value = new URLSearchParams(location.search).get("run_id") || preferred.run_id;
  }

  async function loadScopes() {
    scopes = (await getJSON(`/api/runs/${encodeURIComponent($("run").value)}/scopes/?limit=5000`)).results;
    const select = $("scope");
    const groups = {iphone: "iPhones", cohort: "Cohorts"};
    select.replaceChildren(...Object.entries(groups).map(([kind, label]) => {
      const g = document.createElement("optgroup");
      g.label = label;
      g.append(...scopes.filter((s) => s.scope.startsWith(kind + ":"))
        .map((s) => option(s.scope, s.name ? `${s.name} (${s.scope})` : s.scope)));
      return g;
    }));
    const wanted = new URLSearchParams(location.search).get("scope");
    if (wanted && scopes.some((s) => s.scope === wanted)) select.value = wanted;
    defaultRange();
  }

  function defaultRange() {
    const s = scopes.find((x) => x.scope === $("scope").value);
    if (!s) return;
    const last = new Date(s.last_bucket);
    const from = new Date(Math.max(new Date(s.first_bucket).getTime(), last.getTime() - 7 * 86400000));
    const fromIso = new Date(from.getTime() + 9 * 3600000).toISOString();  // Tokyo wall clock
    $("from-date").value = fromIso.slice(0, 10);
    $("from-time").value = fromIso.slice(11, 16);
    [$("to-date").value, $("to-time").value] = tokyoParts(s.last_bucket);
  }

  async function show() {
    const form = $("controls");
    if (!form.reportValidity()) return;
    const w = $("window").value;
    const from = `${$("from-date").value} ${$("from-time").value}`;
    const to = `${$("to-date").value} ${$("to-time").value}`;
    if (from > to) {  // both are YYYY-MM-DD HH:MM: text order is time order
      ++loaded;
      const text = `the window is reversed: From ${from} is after To ${to}`;
      chart.setData([], [], "window reversed");
      $("rows").tBodies[0].replaceChildren();
      status(text, true);
      document.body.dataset.rows = "0";
      return;
    }
    const names = ["mean", `ema_${w}`, `boll_low_${w}`, `boll_mid_${w}`, `boll_up_${w}`];
    const params = new URLSearchParams({
      run_id: $("run").value, scope: $("scope").value, name: names.join(","),
      bucket__gte: `${$("from-date").value}T${$("from-time").value}`,
      bucket__lte: `${$("to-date").value}T${$("to-time").value}`,
      ordering: "bucket", limit: "5000",
    });
    status("loading…");
    const ticket = ++loaded;
    const values = await allPages(`/api/features/?${params}`);
    if (ticket !== loaded) return;  // a newer request superseded this one
    const byBucket = new Map();
    for (const v of values) {
      let row = byBucket.get(v.bucket);
      if (!row) byBucket.set(v.bucket, row = {bucket: v.bucket});
      row[v.name] = v.value;
    }
    const rows = [...byBucket.values()].sort((a, b) => (a.bucket < b.bucket ? -1 : 1));
    const xs = rows.map((r) => Date.parse(r.bucket));
    const col = (name) => rows.map((r) => (name in r ? r[name] : null));
    chart.setData(xs, [
      {type: "band", name: `Bollinger ${w}`, upper: col(`boll_up_${w}`), lower: col(`boll_low_${w}`),
       color: "rgba(44,160,44,0.15)", stroke: "#2ca02c"},
      {type: "line", name: `Bollinger mid ${w}`, values: col(`boll_mid_${w}`), color: "#2ca02c", dash: [4, 3], width: 1},
      {type: "line", name: "mean", values: col("mean"), color: "#1f3b73", width: 1.4},
      {type: "line", name: `EMA ${w}`, values: col(`ema_${w}`), color: "#ff7f0e", width: 1.8},
    ]);
    $("h-ema").textContent = `EMA ${w}`;
    const fmt = KlineChart.format;
    const body = $("rows").tBodies[0];
    body.replaceChildren(...rows.slice().reverse().map((r) => {
      const tr = document.createElement("tr");
      for (const text of [r.bucket.slice(0, 16).replace("T", " "), fmt(r.mean), fmt(r[`ema_${w}`]),
        fmt(r[`boll_low_${w}`]), fmt(r[`boll_mid_${w}`]), fmt(r[`boll_up_${w}`])]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
    const scopeText = $("scope").selectedOptions[0]?.textContent || $("scope").value;
    if (!rows.length) chart.setData([], [], "no data in this window");
    status(rows.length ? `${rows.length} buckets of ${scopeText}, run ${$("run").value}`
      : `no data from ${from} to ${to}`);
    document.body.dataset.rows = String(rows.length);
  }

  function guarded(fn) {
    return () => fn().catch((err) => status(err.message, true));
  }

  $("controls").addEventListener("submit", (ev) => { ev.preventDefault(); guarded(show)(); });
  $("run").addEventListener("change", guarded(async () => { await loadScopes(); await show(); }));
  $("scope").addEventListener("change", guarded(async () => { defaultRange(); await show(); }));
  $("window").addEventListener("change", guarded(show));
  for (const id of ["from-date", "to-date", "from-time", "to-time"]) {
    $(id).addEventListener("change", guarded(show));
  }
  guarded(async () => { await loadRuns(); await loadScopes(); await show(); })();
})();
