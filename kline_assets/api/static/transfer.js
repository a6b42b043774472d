/*
 * The transfer monitor: GET /api/vendor/status every 3 s — the ingest rate with a sparkline of
 * the last 10 minutes, the backlog, pending per consumer, rejections by reason, corrections,
 * the last frame per symbol (oldest first: the lagging ones) and the symbols complete for the
 * day. Every time is shown as YYYY-MM-DD HH:MM:SS in Asia/Shanghai, 24-hour.
 */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const EVERY_MS = 3000;
  const CLOCK = new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Shanghai", hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const NUM = new Intl.NumberFormat("en-US");
  let refreshes = 0;

  /* An instant (ISO-8601 with an offset) as Beijing wall clock, 24-hour. */
  function clock(iso) {
    if (!iso) return "—";
    const parts = Object.fromEntries(CLOCK.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  /* A bar frame (Beijing wall clock without an offset) as it is shown. */
  function frame(text) {
    return text ? text.replace("T", " ").slice(0, 16) : "—";
  }

  function num(n) {
    return n === null || n === undefined ? "—" : NUM.format(n);
  }

  function price(p) {
    return p === null || p === undefined ? "—" : String(Number(p.toPrecision(6)));
  }

  const cell = KlineApi.cell;
  const fill = (id, rows) => KlineApi.fill($(id).tBodies[0], rows);

  function sparkline(canvas, values) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * dpr;
    canvas.height = h * dpr;
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, h);
    canvas.dataset.points = String(values.length);
    if (values.length < 2) return;
    const hi = Math.max(1, ...values);
    const x = (i) => (i / (values.length - 1)) * (w - 2) + 1;
    const y = (v) => h - 2 - (v / hi) * (h - 6);
    ctx.beginPath();
    ctx.moveTo(x(0), h - 1);
    values.forEach((v, i) => ctx.lineTo(x(i), y(v)));
    ctx.lineTo(x(values.length - 1), h - 1);
    ctx.closePath();
    ctx.fillStyle = "rgba(28, 126, 214, 0.15)";
    ctx.fill();
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.strokeStyle = "#1c7ed6";
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.fillStyle = "#666";
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillText(`max ${NUM.format(Math.round(hi))}`, 4, 10);
  }

  function render(s) {
    const groups = s.groups;
    // The group's rate per 5-second bucket, summed over groups.
    const series = [];
    for (const g of groups) {
      g.rate.forEach((p, i) => { series[i] = (series[i] || 0) + p.bars_per_s; });
    }
    const rate = groups.reduce((a, g) => a + g.bars_per_s, 0);
    $("rate-now").textContent = num(Math.round(rate));
    sparkline($("rate"), series);
    $("backlog").textContent = num(groups.reduce((a, g) => a + g.backlog, 0));
    $("length").textContent = num(s.length);
    const corrections = groups.reduce((a, g) => a + g.corrections, 0);
    $("corrections").textContent = num(corrections);
    const reasons = {};
    for (const g of groups) {
      for (const [r, n] of Object.entries(g.rejected)) reasons[r] = (reasons[r] || 0) + n;
    }
    const rejected = Object.values(reasons).reduce((a, n) => a + n, 0);
    $("rejected").textContent = `${num(rejected)} (${num(s.dead_letters)})`;
    if (s.day) {
      $("complete").textContent = `${num(s.day.complete)} of ${num(s.day.symbols)}`;
      $("complete-day").textContent = `${s.day.day}: all ${s.day.bars_per_day} one-minute bars`;
    } else {
      $("complete").textContent = "—";
      $("complete-day").textContent = "no 1-minute bars yet";
    }
    fill("groups", groups.map((g) => [g.group, num(Math.round(g.bars_per_s)), num(g.backlog),
      num(g.lag), num(g.pending), num(g.inserted), num(g.duplicates), num(g.corrections),
      cell(num(Object.values(g.rejected).reduce((a, n) => a + n, 0)),
           Object.keys(g.rejected).length ? "bad" : ""), clock(g.last_commit_at)]));
    fill("consumers", groups.flatMap((g) => g.consumers.map((c) => [
      `${g.group} / ${c.consumer}`, num(c.pending),
      c.bars_per_s === null || c.bars_per_s === undefined ? "—" : num(Math.round(c.bars_per_s)),
      num(c.bars), c.idle_s.toFixed(1), clock(c.updated_at)])));
    fill("reasons", Object.entries(reasons).sort((a, b) => b[1] - a[1])
      .map(([r, n]) => [r, num(n)]));
    fill("fixes", s.recent_corrections.map((c) => [frame(c.time), c.code, c.period,
      `${price(c.old_close)} → ${price(c.close)}`, `${num(c.old_volume)} → ${num(c.volume)}`,
      clock(c.corrected_at)]));
    fill("frames", s.last_frames.map((f) => [f.symbol, frame(f.frame)]));
    $("symbols-hint").textContent = s.symbols > s.last_frames.length
      ? `(the ${s.last_frames.length} oldest of ${num(s.symbols)} symbols; newest ${frame(s.newest_frame)})`
      : `(${num(s.symbols)} symbols; newest ${frame(s.newest_frame)})`;
    document.body.dataset.symbols = String(s.symbols);
  }

  async function refresh() {
    try {
      const s = await KlineApi.getJSON("/api/vendor/status");
      render(s);
      KlineApi.status($("status"), `${s.stream} · updated ${clock(s.generated_at)}`, false);
    } catch (err) {
      KlineApi.status($("status"), String(err.message || err), true);
    }
    document.body.dataset.refreshes = String(++refreshes);
    setTimeout(refresh, EVERY_MS);
  }

  refresh();
})();
