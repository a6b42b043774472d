/*
 * The bars page: one symbol's bars over 24 hours from GET /api/bars/ (vendor → archive → live),
 * drawn as A-share candlesticks (red up, green down) with a strip under each candle in the
 * colour of its source, volume below, the rows in a table, and the consumer's status from
 * GET /api/bars/status.
 */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const TZ = "Asia/Shanghai";
  const UP = "#e03131", DOWN = "#2f9e44";
  const SOURCE = {vendor: "#868e96", synth: "#1c7ed6", live: "#f08c00"};
  const fmt = KlineChart.format;

  function slotWidth(view) {
    const n = Math.max(1, view.i1 - view.i0);
    return Math.max(1, Math.min(14, (view.pw / n) * 0.7));
  }

  function candles(bars) {
    return {
      type: "candles", name: "OHLC", color: UP,
      valueAt: (i) => `O ${fmt(bars[i].open)} H ${fmt(bars[i].high)} L ${fmt(bars[i].low)} ` +
        `C ${fmt(bars[i].close)} · ${bars[i].source}`,
      extent(i0, i1) {
        let lo = Infinity, hi = -Infinity;
        for (let i = i0; i < i1; i++) {
          if (bars[i].low < lo) lo = bars[i].low;
          if (bars[i].high > hi) hi = bars[i].high;
        }
        return [lo, hi];
      },
      draw(ctx, view, i0, i1) {
        const w = slotWidth(view);
        const bottom = view.yToPx(view.lo);
        for (let i = i0; i < i1; i++) {
          const b = bars[i];
          const x = view.xToPx(view.xs[i]);
          const color = b.close >= b.open ? UP : DOWN;
          ctx.strokeStyle = color;
          ctx.fillStyle = color;
          ctx.beginPath();
          ctx.moveTo(x, view.yToPx(b.high));
          ctx.lineTo(x, view.yToPx(b.low));
          ctx.stroke();
          const top = view.yToPx(Math.max(b.open, b.close));
          const h = Math.max(1, view.yToPx(Math.min(b.open, b.close)) - top);
          ctx.fillRect(x - w / 2, top, w, h);
          ctx.fillStyle = SOURCE[b.source] || "#000";
          ctx.fillRect(x - w / 2, bottom - 5, w, 4);
        }
      },
    };
  }

  function volumes(bars) {
    return {
      type: "volume", name: "volume", color: "#555",
      valueAt: (i) => bars[i].volume,
      extent(i0, i1) {
        let hi = 0;
        for (let i = i0; i < i1; i++) if (bars[i].volume > hi) hi = bars[i].volume;
        return [0, hi];
      },
      draw(ctx, view, i0, i1) {
        const w = slotWidth(view);
        const zero = view.yToPx(0);
        for (let i = i0; i < i1; i++) {
          const b = bars[i];
          const x = view.xToPx(view.xs[i]);
          const y = view.yToPx(b.volume);
          ctx.fillStyle = b.close >= b.open ? UP : DOWN;
          ctx.fillRect(x - w / 2, y, w, Math.max(1, zero - y));
        }
      },
    };
  }

  const chart = KlineChart.create($("chart"), {timeZone: TZ});
  const volume = KlineChart.create($("volume"), {timeZone: TZ});

  const getJSON = KlineApi.getJSON;
  const say = (text, error) => KlineApi.status($("status"), text, error);

  const {cell, fill} = KlineApi;

  async function showStatus() {
    const s = await getJSON("/api/bars/status");
    fill($("consumer").querySelector("tbody"), s.consumers.map((c) => [
      cell(c.consumer), cell(`${c.stream} / ${c.group}`), cell(c.ticks_per_s),
      cell(c.lag_entries), cell((+c.lag_ms / 1000).toFixed(1)), cell(c.pending),
      cell(c.malformed || "0"), cell(c.updated_at)]));
    const h = s.handover;
    fill($("handover").querySelector("tbody"), h.day ? [[cell(h.day), cell(h.archived),
      cell(h.symbols), cell(h.missing_minutes),
      cell(h.exact_share === "" ? "no vendor bars" : `${(100 * +h.exact_share).toFixed(1)} %`),
      cell(h.at)]] : [[cell("no hand-over yet")]]);
    return s;
  }

  async function show() {
    const symbol = $("symbol").value.trim();
    const start = `${$("from-date").value}T${$("from-time").value}`;
    const params = new URLSearchParams({symbol, period: $("period").value, start,
                                        limit: "5000"});
    say("loading …");
    try {
      const {body: page, headers} = await KlineApi.fetchJSON(`/api/bars/?${params}`);
      // Days after exchange-calendars' range: their trading days come from the closures file.
      const calendar = headers.get("X-Kline-Calendar") || "";
      const bars = page.results;
      const xs = bars.map((b) => Date.parse(b.frame));
      chart.setData(xs, [candles(bars)], `no bars of ${symbol} in these 24 hours`);
      volume.setData(xs, [volumes(bars)], "");
      fill($("rows").querySelector("tbody"), bars.slice().reverse().map((b) => [
        cell(b.frame.slice(0, 16).replace("T", " ")), cell(fmt(b.open)), cell(fmt(b.high)),
        cell(fmt(b.low)), cell(fmt(b.close), b.close >= b.open ? "up" : "down"),
        cell(b.volume.toLocaleString("en-US")), cell(b.amount.toLocaleString("en-US")),
        cell(b.source, `src-${b.source}`)]));
      const sources = [...new Set(bars.map((b) => b.source))].join(", ") || "none";
      say(`${bars.length} ${$("period").value}-minute bars of ${symbol} from ${start.replace("T", " ")}` +
          ` for 24 hours (sources: ${sources})` + (calendar ? ` · calendar: ${calendar}` : ""));
      document.body.dataset.rows = String(bars.length);
      document.body.dataset.calendar = calendar;
      document.body.dataset.sources = sources;
    } catch (err) {
      console.error(err.stack);
      say(err.message, true);
      document.body.dataset.rows = "0";
    }
  }

  $("controls").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if ($("controls").reportValidity()) show();
  });

  /* The symbols the stores hold, offered in the symbol field; → {symbol: last day}. */
  async function loadSymbols() {
    const known = await getJSON("/api/bars/symbols?limit=1000");
    $("symbols").replaceChildren(...known.map((k) => {
      const o = document.createElement("option");
      o.value = k.symbol;
      o.label = `${k.sources.join(", ")} · last ${k.last_day}`;
      return o;
    }));
    document.body.dataset.symbols = String(known.length);
    return known;
  }

  (async function init() {
    const q = new URLSearchParams(location.search);
    let s = {live_days: [], symbols: []};
    let known = [];
    try { s = await showStatus(); } catch (err) { say(err.message, true); }
    try { known = await loadSymbols(); } catch (err) { say(err.message, true); }
    // Open on a symbol with data: today's live one, else the first the stores hold, on its
    // last day with bars.
    const latestLive = s.live_days[s.live_days.length - 1];
    const wanted = q.get("symbol") || (s.symbols || [])[0] || known[0]?.symbol || "";
    const entry = known.find((k) => k.symbol === wanted);
    const isLive = (s.symbols || []).includes(wanted);
    const day = q.get("day") || (isLive ? latestLive : entry?.last_day) || latestLive ||
      s.handover?.day;
    $("symbol").value = wanted;
    if (q.get("period")) $("period").value = q.get("period");
    if (day) { $("from-date").value = day; $("from-time").value = "09:00"; }
    if (!known.length) say("no store holds bars yet: load vendor history or start the consumer");
    if ($("symbol").value && day) show();
    setInterval(() => showStatus().catch(() => {}), 5000);
  })();
})();
