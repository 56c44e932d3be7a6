// The dashboard's behaviour: compare chart (uPlot) and the buttons that pick a lineage or a search for it,
// hyperparameter table, run filters and pages, and a
// reload every few seconds that keeps the user's selection, zoom, filters and scroll (sessionStorage,
// which Chromium keeps per tab also for file:// pages). Strings from run folders only ever reach the page
// through textContent, never as HTML.
(function () {
  "use strict";
  var KEY = "mission-gym-dashboard:" + location.pathname;
  var PAGE_SIZE = 50;
  var MAX_SELECTED = 30;
  var PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
    "#9333ea", "#ea580c"];
  var state = {selected: null, metric: null, x: "timestep", smooth: 0, history: true, zoom: null, scroll: 0,
    text: "", status: "", lineage: "", page: 0, trees: {}, searches: {}, live: true};
  try { Object.assign(state, JSON.parse(sessionStorage.getItem(KEY)) || {}); } catch (e) { /* fresh state */ }

  function save() {
    state.scroll = window.scrollY;
    try { sessionStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* storage disabled */ }
  }
  var refreshS = Number(document.body.getAttribute("data-refresh-s")) || 5;
  setInterval(function () {
    if (state.live) { save(); location.reload(); }
  }, refreshS * 1000);
  window.addEventListener("pagehide", save);
  var live = document.getElementById("live");
  live.checked = state.live;
  live.addEventListener("change", function () { state.live = live.checked; save(); });

  var block = document.getElementById("mg-data");
  if (!block) { return; }
  var data = JSON.parse(block.textContent);
  var runs = new Map(data.runs.map(function (r) { return [r.name, r]; }));
  var $ = function (id) { return document.getElementById(id); };

  // --- selection ------------------------------------------------------------------------------------
  if (!Array.isArray(state.selected)) {
    // First visit: the first lineage with curves, in table order (the active run's tree comes first).
    var first = data.runs.filter(function (r) { return data.curves[r.name]; })[0];
    state.selected = first ? data.runs.filter(function (r) { return r.lineage === first.lineage && data.curves[r.name]; })
      .slice(0, 8).map(function (r) { return r.name; }) : [];
  }
  state.selected = state.selected.filter(function (n) { return runs.has(n); });

  function setSelected(names) {
    state.selected = names.slice(0, MAX_SELECTED);
    document.querySelectorAll("input.pick").forEach(function (box) {
      box.checked = state.selected.indexOf(box.value) >= 0;
    });
    state.zoom = null;
    save();
    draw();
  }
  document.querySelectorAll("input.pick").forEach(function (box) {
    box.checked = state.selected.indexOf(box.value) >= 0;
    box.addEventListener("change", function () {
      var rest = state.selected.filter(function (n) { return n !== box.value; });
      setSelected(box.checked ? rest.concat([box.value]) : rest);
    });
  });
  document.querySelectorAll("button.pick-lineage").forEach(function (button) {
    button.addEventListener("click", function () {
      setSelected(data.runs.filter(function (r) { return r.lineage === button.value; })
        .map(function (r) { return r.name; }));
    });
  });
  // A search's buttons pick its runs or its winner's lineage (the page data lists both, by search index).
  document.querySelectorAll("button.pick-search").forEach(function (button) {
    button.addEventListener("click", function () {
      var search = data.searches[Number(button.getAttribute("data-search"))];
      setSelected(search[button.value].filter(function (n) { return runs.has(n); }));
      $("chart").scrollIntoView({block: "center"});
    });
  });
  $("clear").addEventListener("click", function () { setSelected([]); });

  // --- controls -------------------------------------------------------------------------------------
  var metric = $("metric");
  data.metrics.forEach(function (name) {
    var option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    metric.appendChild(option);
  });
  if (data.metrics.indexOf(state.metric) < 0) {
    state.metric = ["ep_return_mean", "capture_rate"].filter(function (m) {
      return data.metrics.indexOf(m) >= 0;
    })[0] || data.metrics[0] || null;
  }
  metric.value = state.metric;
  $("xaxis").value = state.x;
  $("smooth").value = state.smooth;
  $("smooth-value").textContent = Number(state.smooth).toFixed(2);
  $("history").checked = state.history;
  function control(id, key, read) {
    $(id).addEventListener("input", function () {
      state[key] = read($(id));
      if (key === "metric" || key === "x") { state.zoom = null; }
      $("smooth-value").textContent = Number(state.smooth).toFixed(2);
      save();
      draw();
    });
  }
  control("metric", "metric", function (el) { return el.value; });
  control("xaxis", "x", function (el) { return el.value; });
  control("smooth", "smooth", function (el) { return Number(el.value); });
  control("history", "history", function (el) { return el.checked; });

  // --- the compare chart ----------------------------------------------------------------------------
  var plot = null;

  function ema(values, alpha) {
    var out = [], last = null;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v !== null) { last = last === null || alpha === 0 ? v : alpha * last + (1 - alpha) * v; }
      out.push(v === null ? null : last);
    }
    return out;
  }

  // x and y of one run's curve, rows with a step up to `until` (Infinity: all).
  function table(name, until) {
    var curve = data.curves[name];
    if (!curve || !curve[state.x] || !curve[state.metric]) { return null; }
    var rows = [], step = curve.timestep, x = curve[state.x], y = curve[state.metric];
    for (var i = 0; i < x.length; i++) {
      if (x[i] !== null && step[i] <= until) { rows.push(i); }
    }
    // A resumed run can log a step again: sorted by x (stable), so the line never runs backwards.
    rows.sort(function (a, b) { return x[a] - x[b] || a - b; });
    var xs = rows.map(function (i) { return x[i]; }), ys = rows.map(function (i) { return y[i]; });
    return xs.length ? [xs, ema(ys, state.smooth)] : null;
  }

  function seriesList() {
    var list = [], drawn = {};
    state.selected.forEach(function (name, i) {
      var color = PALETTE[i % PALETTE.length], own = table(name, Infinity);
      if (own) { list.push({run: name, label: name, color: color, table: own, history: false}); }
      var child = runs.get(name);
      while (state.history && child && child.parent && child.branch !== null) {
        var parent = runs.get(child.parent);
        if (!parent || state.selected.indexOf(parent.name) >= 0) { break; }
        var key = parent.name + "@" + child.branch;
        var past = drawn[key] ? null : table(parent.name, child.branch);
        drawn[key] = true;  // siblings share their parent's history: drawn once
        if (past) {
          list.push({run: parent.name, label: parent.name + " → " + name, color: color + "66", table: past,
            history: true});
        }
        child = parent;
      }
    });
    return list;
  }

  function fmtNumber(v) {
    if (v === null || v === undefined) { return "—"; }
    var a = Math.abs(v);
    if (a >= 1e6) { return (v / 1e6).toFixed(2) + "M"; }
    if (a >= 1e4) { return (v / 1e3).toFixed(1) + "k"; }
    return Number(v.toPrecision(4)).toString();
  }

  function markers(u, list) {
    if (state.x !== "timestep") { return; }
    var ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height, px = devicePixelRatio || 1;
    list.forEach(function (s) {
      if (s.history) { return; }
      var run = runs.get(s.run);
      ctx.fillStyle = s.color;
      run.checkpoints.forEach(function (step) { shape(ctx, u.valToPos(step, "x", true), bottom, px, true); });
      run.evaluations.forEach(function (step) { shape(ctx, u.valToPos(step, "x", true), top, px, false); });
    });
  }

  function shape(ctx, x, y, px, triangle) {
    var r = 5 * px;
    if (!isFinite(x)) { return; }
    ctx.beginPath();
    if (triangle) {
      ctx.moveTo(x, y - r); ctx.lineTo(x - r, y); ctx.lineTo(x + r, y);
    } else {
      ctx.moveTo(x, y); ctx.lineTo(x + r, y + r); ctx.lineTo(x, y + 2 * r); ctx.lineTo(x - r, y + r);
    }
    ctx.closePath();
    ctx.fill();
  }

  function draw() {
    var box = $("chart");
    if (plot) { plot.destroy(); plot = null; }
    box.textContent = "";
    $("selection").textContent = state.selected.length + " run(s) selected";
    hyperparameters();
    var list = seriesList();
    if (!list.length) {
      var hint = document.createElement("p");
      hint.className = "muted";
      hint.textContent = state.selected.length ? "The selected runs have no " + (state.metric || "metrics") +
        " by " + (state.x === "time" ? "wall-clock time" : "global step") + " yet." :
        "Tick runs in the table (or a lineage above) to compare their curves.";
      box.appendChild(hint);
      return;
    }
    var joined = uPlot.join(list.map(function (s) { return s.table; }));
    var time = state.x === "time";
    var ready = false;
    var opts = {
      width: Math.max(box.clientWidth, 280), height: window.innerWidth < 600 ? 260 : 360,
      scales: {x: {time: time}},
      cursor: {drag: {x: true, y: false}},
      legend: {live: true},
      series: [{label: time ? "time" : "step", value: time ? undefined : function (u, v) { return fmtNumber(v); }}]
        .concat(list.map(function (s) {
          return {label: s.label, stroke: s.color, width: s.history ? 1.5 : 2, dash: s.history ? [5, 4] : undefined,
            spanGaps: true, points: {show: false}, value: function (u, v) { return fmtNumber(v); }};
        })),
      axes: [{values: time ? undefined : function (u, ticks) { return ticks.map(fmtNumber); }},
        {label: state.metric, values: function (u, ticks) { return ticks.map(fmtNumber); }, size: 60}],
      hooks: {
        draw: [function (u) { markers(u, list); }],
        setScale: [function (u, key) {
          if (key !== "x" || !ready) { return; }
          var xs = u.data[0], whole = u.scales.x.min <= xs[0] && u.scales.x.max >= xs[xs.length - 1];
          state.zoom = whole ? null : [u.scales.x.min, u.scales.x.max];
          save();
        }]
      }
    };
    plot = new uPlot(opts, joined, box);
    if (state.zoom) { plot.setScale("x", {min: state.zoom[0], max: state.zoom[1]}); }
    ready = true;
  }

  function hyperparameters() {
    var box = $("hyperparameters");
    box.textContent = "";
    var chosen = state.selected.map(function (n) { return runs.get(n); });
    var keys = [];
    chosen.forEach(function (r) { Object.keys(r.hyperparameters).forEach(function (k) {
      if (keys.indexOf(k) < 0) { keys.push(k); }
    }); });
    if (!chosen.length || !keys.length) { return; }
    keys.sort();
    var tableEl = document.createElement("table"), head = tableEl.createTHead().insertRow();
    tableEl.className = "hp";
    cell(head, "th", "hyperparameter");
    chosen.forEach(function (r) { cell(head, "th", r.name); });
    var body = tableEl.createTBody();
    keys.forEach(function (k) {
      var row = body.insertRow(), values = chosen.map(function (r) {
        return k in r.hyperparameters ? r.hyperparameters[k] : "—";
      });
      if (values.some(function (v) { return v !== values[0]; })) { row.className = "differs"; }
      cell(row, "th", k);
      values.forEach(function (v) { cell(row, "td", v); });
    });
    var title = document.createElement("h3");
    title.textContent = "Hyperparameters of the selected runs (differences highlighted)";
    box.appendChild(title);
    var wrap = document.createElement("div");
    wrap.className = "hp-wrap";
    wrap.appendChild(tableEl);
    box.appendChild(wrap);
  }

  function cell(row, tag, text) {
    var el = document.createElement(tag);
    el.textContent = text;
    row.appendChild(el);
  }

  // --- run list: filters and pages ------------------------------------------------------------------
  var rows = Array.prototype.slice.call(document.querySelectorAll("#runs tbody tr"));
  var texts = rows.map(function (tr) {
    var notes = tr.querySelector(".notes");
    return (tr.getAttribute("data-run") + " " + (notes ? notes.textContent : "")).toLowerCase();
  });
  $("filter-text").value = state.text;
  $("filter-status").value = state.status;
  $("filter-lineage").value = state.lineage;
  function filter() {
    var text = state.text.toLowerCase(), shown = [];
    rows.forEach(function (tr, i) {
      var match = (!text || texts[i].indexOf(text) >= 0) &&
        (!state.status || tr.getAttribute("data-status") === state.status) &&
        (!state.lineage || tr.getAttribute("data-lineage") === state.lineage);
      if (match) { shown.push(tr); }
    });
    var pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    var first = state.page * PAGE_SIZE, visible = new Set(shown.slice(first, first + PAGE_SIZE));
    rows.forEach(function (tr) { tr.hidden = !visible.has(tr); });
    $("filter-count").textContent = shown.length + " of " + rows.length + " runs";
    $("page-info").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }
  [["filter-text", "text"], ["filter-status", "status"], ["filter-lineage", "lineage"]].forEach(function (pair) {
    $(pair[0]).addEventListener("input", function () {
      state[pair[1]] = $(pair[0]).value;
      state.page = 0;
      save();
      filter();
    });
  });
  $("prev").addEventListener("click", function () { state.page -= 1; save(); filter(); });
  $("next").addEventListener("click", function () { state.page += 1; save(); filter(); });

  // --- lineage trees and searches keep their folded state -------------------------------------------
  [["details.tree-panel", "data-lineage", "trees"], ["details.search-panel", "data-search", "searches"]]
    .forEach(function (kind) {
      var folded = state[kind[2]];
      document.querySelectorAll(kind[0]).forEach(function (panel) {
        var key = panel.getAttribute(kind[1]);
        if (Object.prototype.hasOwnProperty.call(folded, key)) { panel.open = folded[key]; }
        panel.addEventListener("toggle", function () { folded[key] = panel.open; save(); });
      });
    });

  var scrollTimer = null;
  window.addEventListener("scroll", function () {
    clearTimeout(scrollTimer);
    scrollTimer = setTimeout(save, 200);
  });
  var width = window.innerWidth;
  window.addEventListener("resize", function () {
    if (window.innerWidth !== width) { width = window.innerWidth; draw(); }
  });

  filter();
  draw();
  window.scrollTo(0, state.scroll);
})();
