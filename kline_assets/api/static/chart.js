/*
 * KlineChart: a small canvas time-series chart for the service's pages — no dependencies, no
 * build step. Lines and filled bands come built in; other kinds (e.g. candlesticks) plug in as
 * series objects with `extent(i0, i1)` and `draw(ctx, view, i0, i1)`. The wheel zooms around the
 * pointer, dragging pans, a double click resets; hovering shows every series' value at the
 * nearest time. Times are epoch milliseconds, labelled in the chart's time zone (24-hour).
 *
 *   const chart = KlineChart.create(canvas, {timeZone: "Asia/Tokyo"});
 *   chart.setData(xs, [{type: "band", name: "Bollinger", upper, lower, color},
 *                      {type: "line", name: "mean", values, color}]);
 */
(function (global) {
  "use strict";

  const PAD = {left: 72, right: 16, top: 12, bottom: 34};

  function niceStep(span, target) {
    const raw = span / Math.max(1, target);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  }

  const TIME_STEPS = [15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60000);

  function lowerBound(xs, x) {
    let lo = 0, hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /* The zone's offset from UTC at `at` (ms), so time ticks fall on its round hours. */
  function zoneOffsetMs(timeZone, at) {
    const parts = {};
    new Intl.DateTimeFormat("en-US", {timeZone, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"})
      .formatToParts(new Date(at)).forEach((p) => { parts[p.type] = p.value; });
    const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24,
      +parts.minute);
    return wall - Math.floor(at / 60000) * 60000;
  }

  function finite(v) { return v !== null && v !== undefined && Number.isFinite(v); }

  function lineSeries(s) {
    return {
      name: s.name, color: s.color || "#1f77b4",
      valueAt: (i) => s.values[i],
      extent(i0, i1) {
        let lo = Infinity, hi = -Infinity;
        for (let i = i0; i < i1; i++) {
          const v = s.values[i];
          if (finite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
        }
        return [lo, hi];
      },
      draw(ctx, view, i0, i1) {
        ctx.save();
        ctx.strokeStyle = this.color;
        ctx.lineWidth = s.width || 1.5;
        if (s.dash) ctx.setLineDash(s.dash);
        ctx.beginPath();
        let pen = false;
        for (let i = i0; i < i1; i++) {
          const v = s.values[i];
          if (!finite(v)) { pen = false; continue; }
          const px = view.xToPx(view.xs[i]), py = view.yToPx(v);
          if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
          pen = true;
        }
        ctx.stroke();
        ctx.restore();
      },
    };
  }

  function bandSeries(s) {
    const color = s.color || "rgba(31,119,180,0.15)";
    return {
      name: s.name, color: s.stroke || color,
      valueAt: (i) => (finite(s.lower[i]) && finite(s.upper[i])
        ? `${fmt(s.lower[i])} – ${fmt(s.upper[i])}` : null),
      extent(i0, i1) {
        let lo = Infinity, hi = -Infinity;
        for (let i = i0; i < i1; i++) {
          if (finite(s.lower[i]) && s.lower[i] < lo) lo = s.lower[i];
          if (finite(s.upper[i]) && s.upper[i] > hi) hi = s.upper[i];
        }
        return [lo, hi];
      },
      draw(ctx, view, i0, i1) {
        ctx.save();
        ctx.fillStyle = color;
        let run = [];
        const flush = () => {
          if (run.length > 1) {
            ctx.beginPath();
            run.forEach((i, k) => {
              const px = view.xToPx(view.xs[i]), py = view.yToPx(s.upper[i]);
              if (k) ctx.lineTo(px, py); else ctx.moveTo(px, py);
            });
            for (let k = run.length - 1; k >= 0; k--) {
              const i = run[k];
              ctx.lineTo(view.xToPx(view.xs[i]), view.yToPx(s.lower[i]));
            }
            ctx.closePath();
            ctx.fill();
          }
          run = [];
        };
        for (let i = i0; i < i1; i++) {
          if (finite(s.upper[i]) && finite(s.lower[i])) run.push(i); else flush();
        }
        flush();
        ctx.restore();
      },
    };
  }

  function fmt(v) {
    if (!finite(v)) return "–";
    return Math.abs(v) >= 1000 ? v.toLocaleString("en-US", {maximumFractionDigits: 1})
      : v.toPrecision(6);
  }

  function create(canvas, options) {
    const opts = Object.assign({timeZone: "Asia/Tokyo"}, options || {});
    const ctx = canvas.getContext("2d");
    const tip = document.createElement("div");
    tip.className = "kline-chart-tip";
    tip.style.cssText = "position:absolute;pointer-events:none;display:none;background:#fff;" +
      "border:1px solid #999;border-radius:4px;padding:4px 8px;font:12px sans-serif;" +
      "white-space:nowrap;box-shadow:0 1px 4px rgba(0,0,0,.2);z-index:10";
    canvas.parentElement.style.position = "relative";
    canvas.parentElement.appendChild(tip);
    // One format everywhere: year first, 24-hour (what the date inputs and the tables show).
    const fullFmt = new Intl.DateTimeFormat("sv-SE", {timeZone: opts.timeZone, year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"});

    const state = {xs: [], series: [], x0: 0, x1: 1, hover: -1, drag: null, empty: "no data"};

    function size() {
      const dpr = global.devicePixelRatio || 1;
      const w = canvas.clientWidth, h = canvas.clientHeight;
      if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
        canvas.width = Math.round(w * dpr);
        canvas.height = Math.round(h * dpr);
      }
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      return {w, h};
    }

    function view() {
      const {w, h} = size();
      const xs = state.xs;
      const i0 = Math.max(0, lowerBound(xs, state.x0) - 1);
      const i1 = Math.min(xs.length, lowerBound(xs, state.x1) + 1);
      let lo = Infinity, hi = -Infinity;
      for (const s of state.series) {
        const [a, b] = s.extent(i0, i1);
        if (a < lo) lo = a;
        if (b > hi) hi = b;
      }
      if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
      if (lo === hi) { lo -= 1; hi += 1; }
      const padY = (hi - lo) * 0.05;
      lo -= padY; hi += padY;
      const pw = w - PAD.left - PAD.right, ph = h - PAD.top - PAD.bottom;
      return {
        w, h, i0, i1, xs, lo, hi, pw, ph,
        xToPx: (x) => PAD.left + ((x - state.x0) / (state.x1 - state.x0)) * pw,
        pxToX: (px) => state.x0 + ((px - PAD.left) / pw) * (state.x1 - state.x0),
        yToPx: (y) => PAD.top + (1 - (y - lo) / (hi - lo)) * ph,
      };
    }

    function drawAxes(v) {
      ctx.save();
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "#444";
      ctx.strokeStyle = "#e5e5e5";
      ctx.lineWidth = 1;
      const yStep = niceStep(v.hi - v.lo, Math.max(2, Math.floor(v.ph / 50)));
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let y = Math.ceil(v.lo / yStep) * yStep; y <= v.hi; y += yStep) {
        const py = v.yToPx(y);
        ctx.beginPath(); ctx.moveTo(PAD.left, py); ctx.lineTo(v.w - PAD.right, py); ctx.stroke();
        ctx.fillText(fmt(y), PAD.left - 6, py);
      }
      const want = (state.x1 - state.x0) / Math.max(2, Math.floor(v.pw / 110));
      const xStep = TIME_STEPS.find((s) => s >= want) || TIME_STEPS[TIME_STEPS.length - 1];
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const offset = zoneOffsetMs(opts.timeZone, state.x0);
      for (let x = Math.ceil((state.x0 + offset) / xStep) * xStep - offset; x <= state.x1;
        x += xStep) {
        const px = v.xToPx(x);
        ctx.beginPath(); ctx.moveTo(px, PAD.top); ctx.lineTo(px, v.h - PAD.bottom); ctx.stroke();
        // A label near an edge slides inward rather than being cut by the canvas.
        const label = fullFmt.format(new Date(x));
        const half = ctx.measureText(label).width / 2 + 2;
        const at = Math.min(Math.max(px, half), v.w - half);
        ctx.fillText(label, at, v.h - PAD.bottom + 6);
        canvas.dataset.lastLabel = label;
        canvas.dataset.lastLabelRight = String(Math.ceil(at + half));
      }
      ctx.strokeStyle = "#888";
      ctx.strokeRect(PAD.left, PAD.top, v.pw, v.ph);
      ctx.restore();
    }

    function draw() {
      const v = view();
      ctx.clearRect(0, 0, v.w, v.h);
      if (!state.xs.length) {  // no axes made up for data that is not there
        ctx.save();
        ctx.font = "14px sans-serif";
        ctx.fillStyle = "#666";
        ctx.textAlign = "center";
        ctx.textBaseline = "middle";
        ctx.fillText(state.empty, v.w / 2, v.h / 2);
        ctx.restore();
        canvas.dataset.points = "0";
        canvas.dataset.draws = String((+canvas.dataset.draws || 0) + 1);
        return;
      }
      drawAxes(v);
      ctx.save();
      ctx.beginPath();
      ctx.rect(PAD.left, PAD.top, v.pw, v.ph);
      ctx.clip();
      for (const s of state.series) s.draw(ctx, v, v.i0, v.i1);
      if (state.hover >= 0 && state.hover < state.xs.length) {
        const px = v.xToPx(state.xs[state.hover]);
        ctx.strokeStyle = "#555";
        ctx.setLineDash([3, 3]);
        ctx.beginPath(); ctx.moveTo(px, PAD.top); ctx.lineTo(px, v.h - PAD.bottom); ctx.stroke();
      }
      ctx.restore();
      canvas.dataset.points = String(Math.max(0, v.i1 - v.i0));
      canvas.dataset.x0 = String(state.x0);
      canvas.dataset.x1 = String(state.x1);
      canvas.dataset.draws = String((+canvas.dataset.draws || 0) + 1);
    }

    function showTip(clientX, clientY) {
      const i = state.hover;
      if (i < 0) { tip.style.display = "none"; return; }
      const rows = [`<b>${fullFmt.format(new Date(state.xs[i]))}</b>`];
      for (const s of state.series) {
        const value = s.valueAt ? s.valueAt(i) : null;
        const text = typeof value === "string" ? value : fmt(value);
        rows.push(`<span style="color:${s.color}">■</span> ${s.name}: ${text}`);
      }
      tip.innerHTML = rows.join("<br>");
      const box = canvas.getBoundingClientRect();
      const parent = canvas.parentElement.getBoundingClientRect();
      tip.style.display = "block";
      const left = clientX - parent.left + 14;
      tip.style.left = `${Math.min(left, box.width - tip.offsetWidth - 4)}px`;
      tip.style.top = `${clientY - parent.top + 14}px`;
    }

    function nearest(px) {
      if (!state.xs.length) return -1;
      const v = view();
      const x = v.pxToX(px);
      const i = lowerBound(state.xs, x);
      const cands = [i - 1, i].filter((k) => k >= 0 && k < state.xs.length);
      return cands.reduce((a, b) => (Math.abs(state.xs[a] - x) <= Math.abs(state.xs[b] - x) ? a : b));
    }

    function localX(ev) { return ev.clientX - canvas.getBoundingClientRect().left; }

    canvas.addEventListener("wheel", (ev) => {
      if (!state.xs.length) return;
      ev.preventDefault();
      const v = view();
      const at = v.pxToX(localX(ev));
      const factor = ev.deltaY < 0 ? 1 / 1.25 : 1.25;
      const full = state.xs[state.xs.length - 1] - state.xs[0];
      const minSpan = 4 * 15 * 60000;
      let span = Math.max(minSpan, Math.min(full, (state.x1 - state.x0) * factor));
      const frac = (at - state.x0) / (state.x1 - state.x0);
      state.x0 = at - frac * span;
      state.x1 = state.x0 + span;
      clamp();
      draw();
    }, {passive: false});

    canvas.addEventListener("mousedown", (ev) => {
      state.drag = {px: localX(ev), x0: state.x0, x1: state.x1};
    });
    global.addEventListener("mouseup", () => { state.drag = null; });
    canvas.addEventListener("mousemove", (ev) => {
      const px = localX(ev);
      if (state.drag) {
        const v = view();
        const dx = ((px - state.drag.px) / v.pw) * (state.drag.x1 - state.drag.x0);
        state.x0 = state.drag.x0 - dx;
        state.x1 = state.drag.x1 - dx;
        clamp();
      }
      state.hover = nearest(px);
      draw();
      showTip(ev.clientX, ev.clientY);
    });
    canvas.addEventListener("mouseleave", () => {
      state.hover = -1; tip.style.display = "none"; draw();
    });
    canvas.addEventListener("dblclick", () => { reset(); draw(); });
    global.addEventListener("resize", () => draw());

    function clamp() {
      if (!state.xs.length) return;
      const lo = state.xs[0], hi = state.xs[state.xs.length - 1];
      const span = state.x1 - state.x0;
      if (state.x0 < lo) { state.x0 = lo; state.x1 = lo + span; }
      if (state.x1 > hi) { state.x1 = hi; state.x0 = Math.max(lo, hi - span); }
    }

    function reset() {
      const xs = state.xs;
      state.x0 = xs.length ? xs[0] : 0;
      state.x1 = xs.length > 1 ? xs[xs.length - 1] : state.x0 + 1;
    }

    return {
      canvas,
      setData(xs, series, empty) {
        state.xs = xs;
        state.empty = empty || "no data";
        state.series = series.map((s) => (s.type === "band" ? bandSeries(s)
          : s.type === "line" || !s.type ? lineSeries(s) : s));
        state.hover = -1;
        tip.style.display = "none";  // values of the old data must not linger
        reset();
        draw();
      },
      zoom(x0, x1) { state.x0 = x0; state.x1 = x1; clamp(); draw(); },
      reset() { reset(); draw(); },
      redraw: draw,
      view,
    };
  }

  global.KlineChart = {create, lineSeries, bandSeries, format: fmt, lowerBound};
})(window);
