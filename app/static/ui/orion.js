// Orion dashboard behaviour: local time zones for timestamps and for the forms' times, the
// run history chart, and confirmations for destructive forms. Everything else is htmx (2.x)
// driven by the server.
(function () {
  "use strict";

  var STATE_COLOURS = {
    SCHEDULED: "#b08800", PENDING: "#6e7781", RUNNING: "#0969da", COMPLETED: "#1a7f37",
    FAILED: "#cf222e", CANCELLED: "#57606a", CRASHED: "#bc4c00", PAUSED: "#8250df",
    CANCELLING: "#953800"
  };

  var localFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZoneName: "short"
  });

  // <time datetime="ISO" title="... UTC">: show the browser's time zone, keep UTC on hover.
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) { return; }
      el.textContent = localFormat.format(when);
      el.setAttribute("data-local", "");
    });
  }

  // The browser's IANA time zone ("Europe/Paris"), or null if it does not say.
  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
    } catch (error) {
      return null;
    }
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  // A Date as a datetime-local input's value: the browser's wall-clock time, to the second.
  function localInputValue(when) {
    return when.getFullYear() + "-" + pad2(when.getMonth() + 1) + "-" + pad2(when.getDate()) +
      "T" + pad2(when.getHours()) + ":" + pad2(when.getMinutes()) + ":" +
      pad2(when.getSeconds());
  }

  // Forms with a time zone field (input[data-browser-zone], name "tz") take times in the
  // browser's zone: the field gets that zone, so the server reads the form's times in it;
  // each time the server filled in (data-utc, an ISO instant) is shown as the browser's
  // wall-clock time of that instant; and the form names the zone ([data-zone-name]).
  // Without this script the server's zone (UTC) stays, and the form says so.
  function localizeForms(root) {
    var zone = browserZone();
    if (!zone) { return; }
    var forms = [];
    if (root.matches && root.matches("form")) { forms.push(root); }
    root.querySelectorAll("form").forEach(function (form) { forms.push(form); });
    forms.forEach(function (form) {
      var field = form.querySelector("input[data-browser-zone]");
      if (!field) { return; }
      form.querySelectorAll("input[type=datetime-local][data-utc]").forEach(function (input) {
        var when = new Date(input.getAttribute("data-utc"));
        if (input.getAttribute("data-utc") && !isNaN(when.getTime())) {
          input.value = localInputValue(when);
        }
        input.removeAttribute("data-utc");
      });
      field.value = zone;
      form.querySelectorAll("[data-zone-name]").forEach(function (el) { el.textContent = zone; });
    });
  }

  // The run history chart: counts per bucket stacked by state (each series is drawn as the
  // running total, so bars of later states sit on top of earlier ones).
  function drawCharts(root) {
    if (typeof uPlot === "undefined") { return; }
    root.querySelectorAll("[data-history-chart]:not([data-drawn])").forEach(function (el) {
      var data = JSON.parse(el.querySelector("script[type='application/json']").textContent);
      el.setAttribute("data-drawn", "");
      var totals = data.times.map(function () { return 0; });
      var stacked = data.series.map(function (s) {
        return s.counts.map(function (count, i) { totals[i] += count; return totals[i]; });
      });
      var bars = uPlot.paths.bars({ size: [0.8, 40] });
      var series = [{ label: "Time" }];
      var columns = [data.times];
      // Draw the tallest stack first so each shorter one paints over it.
      for (var i = data.series.length - 1; i >= 0; i--) {
        (function (raw) {
          series.push({
            label: raw.state.charAt(0) + raw.state.slice(1).toLowerCase(),
            fill: STATE_COLOURS[raw.state] || "#999", stroke: STATE_COLOURS[raw.state] || "#999",
            paths: bars, points: { show: false },
            value: function (u, v, si, idx) { return idx == null ? "—" : raw.counts[idx]; }
          });
        })(data.series[i]);
        columns.push(stacked[i]);
      }
      if (data.series.length === 0) {
        series.push({ label: "Runs", stroke: "#999" });
        columns.push(data.times.map(function () { return 0; }));
      }
      series.push({
        label: "Mean run time", scale: "s", stroke: "#24292f", width: 2,
        points: { show: true, size: 5 },
        value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " s"; }
      });
      columns.push(data.durations);
      var width = Math.max(el.clientWidth || 0, 320);
      new uPlot({
        width: width, height: 220, series: series,
        scales: {
          y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } },
          s: { range: function (u, min, max) { return [0, Math.max(1, max || 0)]; } }
        },
        axes: [{}, { label: "Flow runs" },
               { scale: "s", side: 1, label: "Mean run time (s)", grid: { show: false } }]
      }, columns, el);
    });
  }

  // Shortest time axis of the recent runs chart, in seconds: one run alone (or runs a few
  // seconds apart) still gets readable ticks instead of a domain of a second or two.
  var MIN_TIME_SPAN = 60;

  // The time axis from the first to the last start, padded so the first and last bars are
  // whole, and centred on the runs to at least MIN_TIME_SPAN.
  function paddedTimeRange(u, min, max) {
    var span = (max || 0) - (min || 0);
    var pad = Math.max(span * 0.05, (MIN_TIME_SPAN - span) / 2);
    return [min - pad, max + pad];
  }

  // A deployment's recent runs: one bar per run at its start time, its height the run
  // time, one series (colour) per state.
  function drawDurations(root) {
    if (typeof uPlot === "undefined") { return; }
    root.querySelectorAll("[data-durations-chart]:not([data-drawn])").forEach(function (el) {
      var data = JSON.parse(el.querySelector("script[type='application/json']").textContent);
      el.setAttribute("data-drawn", "");
      var bars = uPlot.paths.bars({ size: [0.6, 24] });
      var series = [{ label: "Started" }];
      var columns = [data.times];
      data.series.forEach(function (s) {
        var colour = STATE_COLOURS[s.state] || "#999";
        series.push({
          label: s.state.charAt(0) + s.state.slice(1).toLowerCase(), fill: colour,
          stroke: colour, paths: bars, points: { show: false },
          value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " s"; }
        });
        columns.push(s.seconds);
      });
      // The chart stays on its element (el.chart) for whoever needs its scales.
      el.chart = new uPlot({
        width: Math.max(el.clientWidth || 0, 320), height: 200, series: series,
        scales: {
          x: { time: true, range: paddedTimeRange },
          y: { range: function (u, min, max) { return [0, Math.max(1, (max || 0) * 1.1)]; } }
        },
        axes: [{}, { label: "Run time (s)" }]
      }, columns, el);
    });
  }

  function enhance(root) {
    localizeTimes(root);
    localizeForms(root);
    drawCharts(root);
    drawDurations(root);
  }

  // Forms with data-confirm ask before submitting (destructive single-item actions).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  // A "select all" checkbox (data-select-all="<name>") ticks every checkbox of that name
  // in its table.
  document.addEventListener("change", function (event) {
    var name = event.target.getAttribute && event.target.getAttribute("data-select-all");
    if (!name) { return; }
    event.target.closest("table").querySelectorAll("input[type=checkbox][name='" + name + "']")
      .forEach(function (box) { box.checked = event.target.checked; });
  });

  // A copy button (data-copy="<selector>") puts that element's text on the clipboard and
  // says so in the nearby [data-copy-status].
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector("[data-copy-status]");
    var say = function (text) { if (status) { status.textContent = text; } };
    if (!source) { return; }
    var text = source.textContent;
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { say("Copied."); },
        function () { say("Copying failed: select the command and copy it."); });
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      say(document.execCommand("copy") ? "Copied." : "Press Ctrl+C to copy the selection.");
    }
  });

  // A time (ms since the epoch) as the page's <time>: the browser's zone, UTC on hover.
  function timeElement(ms) {
    var when = new Date(ms), el = document.createElement("time");
    el.setAttribute("datetime", when.toISOString());
    el.setAttribute("title", when.toISOString().replace("T", " ").slice(0, 19) + " UTC");
    el.setAttribute("data-local", "");
    el.textContent = localFormat.format(when);
    return el;
  }

  // A flow run's timeline (ol[data-timeline]): every bar on one axis from its row's
  // data-start / data-end (ms), running bars up to the server's clock (#run-poll's data-now),
  // as the server places them. Done again after every swap: rows that changed arrive alone
  // and take their place on the axis, and running bars grow.
  function layoutTimelines() {
    var poll = document.getElementById("run-poll");
    var now = poll && poll.hasAttribute("data-now") ? Number(poll.getAttribute("data-now")) : Date.now();
    document.querySelectorAll("ol[data-timeline]").forEach(function (list) {
      var rows = list.querySelectorAll("li[data-start]");
      if (!rows.length) { return; }
      var spans = [], start = Infinity, end = -Infinity;
      rows.forEach(function (row) {
        var s = Number(row.getAttribute("data-start"));
        var e = row.hasAttribute("data-end") ? Number(row.getAttribute("data-end")) : Math.max(now, s);
        spans.push([row, s, e]);
        start = Math.min(start, s);
        end = Math.max(end, e);
      });
      var width = Math.max(end - start, 1);
      spans.forEach(function (item) {
        var bar = item[0].querySelector(".tl-bar");
        if (!bar) { return; }
        bar.style.left = ((item[1] - start) / width * 100).toFixed(3) + "%";
        bar.style.width = Math.max((item[2] - item[1]) / width * 100, 0.4).toFixed(3) + "%";
      });
      var axis = list.parentNode.querySelector("[data-timeline-axis]");
      if (axis) {
        [["start", start], ["end", end]].forEach(function (pair) {
          var slot = axis.querySelector("[data-axis='" + pair[0] + "']");
          if (slot) { slot.replaceChildren(timeElement(pair[1])); }
        });
        axis.hidden = false;
      }
    });
  }

  // Log records a poll appended to a logs table (tbody[data-limit]): the newest data-limit
  // stay, as when the table is drawn whole.
  function trimLogs() {
    document.querySelectorAll("tbody[data-limit]").forEach(function (rows) {
      var extra = rows.children.length - Number(rows.getAttribute("data-limit"));
      for (; extra > 0; extra--) { rows.removeChild(rows.firstElementChild); }
    });
  }

  document.addEventListener("DOMContentLoaded", layoutTimelines);
  // After the main swap (htmx 2 swaps the out-of-band parts first), before the next paint.
  document.addEventListener("htmx:afterSwap", function () { layoutTimelines(); trimLogs(); });

  document.addEventListener("DOMContentLoaded", function () { enhance(document.body); });
  // htmx 2 fires htmx:load on every piece of content it swaps in.
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
})();
