(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("history-data").textContent);
  var S = data.strings;
  var MARKS = data.marks;  // status → mark, as the timeline shows them
  var KINDS = data.kinds;  // kind (not a deployment) → [label, mark]
  var runs = {};
  data.runs.forEach(function (r) { runs[r[0]] = r; });
  var NS = "http://www.w3.org/2000/svg";

  function str(i) { return i < 0 ? null : S[i]; }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function seconds(ms) {
    if (ms === null || ms === undefined) return "\u2014";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }
  // below config::target: "group::step" for a deployment's steps, the test's name for a
  // smoke test (a plain pytest item: file::test)
  function stepName(node) {
    var parts = node.split("::");
    return parts.length > 2 ? parts.slice(2).join("::") : parts[parts.length - 1];
  }

  // A label of at most ``room`` characters: a longer one keeps its start and end.
  function fit(label, room) {
    if (label.length <= room) return label;
    var head = Math.ceil((room - 1) / 2);
    return label.slice(0, head) + "\u2026" + label.slice(label.length - (room - 1 - head));
  }

  // Drawn at the width it is shown (``width`` px, never scaled down), so its 12 px labels
  // stay 12 px: labels left of the bars when there is room, else each above its bar.
  function gantt(steps, total, width) {
    var CHAR = 7.3;  // px a character of the 12 px monospace labels takes
    width = Math.max(280, Math.floor(width));
    var stacked = width < 720;
    var labelW = stacked ? 0 : Math.min(340, Math.round(width * 0.32));
    var rowH = stacked ? 32 : 18, chartW = width - labelW - 12;
    var room = Math.max(8, Math.floor(((stacked ? width : labelW) - 8) / CHAR));
    var end = total || 0;
    steps.forEach(function (s) { end = Math.max(end, s[4] + s[3]); });
    var scale = end > 0 ? chartW / end : 0;
    var height = steps.length * rowH + 26;
    var root = svg("svg", { "class": "gantt", role: "img", width: width, height: height,
      viewBox: "0 0 " + width + " " + height,
      "aria-label": "Gantt chart of " + steps.length + " steps over " + seconds(end) + "; the steps table below lists the same facts" });
    root.appendChild(svg("text", { x: labelW + 2, y: 14 }, "0 s"));
    root.appendChild(svg("text", { x: width - 6, y: 14, "text-anchor": "end" }, seconds(end)));
    steps.forEach(function (s, i) {
      var y = 22 + i * rowH, outcome = str(s[2]);
      var cls = { passed: "bar-passed", failed: "bar-failed", skipped: "bar-skipped", "not run": "bar-not-run" }[outcome] || "bar-other";
      var label = stepName(str(s[0]));
      root.appendChild(svg("text", { x: 3, y: y + 13 }, fit(label, room)));
      var barY = stacked ? y + 17 : y + 3, barH = stacked ? 11 : rowH - 6;
      var bar = svg("rect", { x: labelW + 2 + s[4] * scale, y: barY, width: Math.max(1, s[3] * scale), height: barH, "class": cls });
      bar.appendChild(svg("title", {}, label + ": " + outcome + ", starts " + seconds(s[4]) + ", " + s[3] + " ms" + (s[5] ? ", lane " + (s[5] + 1) : "")));
      root.appendChild(bar);
    });
    return root;
  }

  function diffBlock(text) {
    var pre = el("pre", { "class": "diff" });
    text.split("\n").forEach(function (line) {
      var cls = line.indexOf("+++") === 0 || line.indexOf("---") === 0 ? "" :
        line[0] === "+" ? "diff-add" : line[0] === "-" ? "diff-del" : line.indexOf("@@") === 0 ? "diff-hunk" : "";
      var span = el("span", cls ? { "class": cls } : {}, line);
      pre.appendChild(span);
      if (!cls) pre.appendChild(document.createTextNode("\n"));
    });
    return pre;
  }

  function show(id, focus) {
    var r = runs[id];
    var box = document.getElementById("detail");
    if (!r) return;
    box.textContent = "";
    var status = str(r[2]), kind = r.length > 12 ? str(r[12]) : "deploy";
    var h = el("h3", { id: "run-" + r[0], tabindex: "-1" });
    h.appendChild(document.createTextNode("Run " + r[0] + " \u2192 " + str(r[1]) + ": "));
    if (KINDS[kind]) {
      h.appendChild(el("span", { "class": "kind kind-" + kind }, KINDS[kind][1] + " " + KINDS[kind][0]));
      h.appendChild(document.createTextNode(" "));
    }
    h.appendChild(el("span", { "class": "status status-" + status }, (MARKS[status] || "?") + " " + status));
    box.appendChild(h);
    var facts = el("dl", { "class": "facts" });
    [["Kind", KINDS[kind] ? KINDS[kind][0] : "deployment"], ["Started (UTC)", r[3]], ["Duration", seconds(r[4])], ["Who", str(r[5])], ["Config sha", r[6]],
     ["Dry run", r[7] ? "yes (a plan: nothing was changed)" : "no"], ["Steps", r[11].length]].forEach(function (f) {
      facts.appendChild(el("dt", {}, f[0])); facts.appendChild(el("dd", {}, f[1]));
    });
    box.appendChild(facts);
    var lint = r.length > 13 ? r[13] : [];
    if (lint.length) {
      box.appendChild(el("h4", {}, "Lint findings (squawk) in the migrations this run would apply"));
      var findings = box.appendChild(el("ul", { "class": "lint", id: "lint-findings" }));
      lint.forEach(function (i) { findings.appendChild(el("li", {}, null)).appendChild(el("code", {}, str(i))); });
    }
    var steps = r[11];
    box.appendChild(el("h4", {}, "Steps"));
    if (steps.length) {
      box.appendChild(el("p", { "class": "meta" }, "Each step starts where it was recorded to start; steps that ran at the same time sit side by side (runs recorded before the store kept starts are laid out from their order and durations). Log tails are shown for the newest " + data.logRuns + " runs of each target whose logs are in this machine's .deploy/logs."));
      box.appendChild(gantt(steps, r[4], box.clientWidth));
      var table = el("table", { id: "steps-table" });
      table.appendChild(el("caption", {}, "Steps of run " + r[0] + " in the order they were recorded"));
      var head = el("tr");
      ["Step", "Kind", "Outcome", "Start", "ms", "Command (masked)", "Message", "Log tail"].forEach(function (t) { head.appendChild(el("th", { scope: "col" }, t)); });
      table.appendChild(el("thead")).appendChild(head);
      var body = table.appendChild(el("tbody"));
      steps.forEach(function (s) {
        var tr = el("tr");
        tr.appendChild(el("th", { scope: "row", title: str(s[0]) }, stepName(str(s[0]))));
        tr.appendChild(el("td", {}, str(s[1])));
        tr.appendChild(el("td", {}, null)).appendChild(el("span", { "class": "status status-" + str(s[2]).replace(" ", "-") }, str(s[2])));
        tr.appendChild(el("td", {}, seconds(s[4])));
        tr.appendChild(el("td", {}, s[3]));
        tr.appendChild(el("td", {}, null)).appendChild(el("code", {}, str(s[7]) || ""));
        var msg = str(s[6]);
        var td = tr.appendChild(el("td", { "class": "msg" }));
        if (msg) td.appendChild(el("pre", {}, msg.split("\n").slice(-20).join("\n")));
        var tail = s.length > 9 ? str(s[9]) : null;
        var logCell = tr.appendChild(el("td", { "class": "msg" }));
        if (tail) logCell.appendChild(el("pre", { "class": "log" }, tail));
        body.appendChild(tr);
      });
      var scroller = el("div", { "class": "scroll", role: "region", tabindex: "0", "aria-label": "Steps of run " + r[0] });
      scroller.appendChild(table);
      box.appendChild(scroller);
    } else {
      box.appendChild(el("p", {}, "No steps recorded."));
    }
    box.appendChild(el("h4", {}, "Config change"));
    if (r[9] === -1) box.appendChild(el("p", {}, "No earlier deployment of this target to compare with."));
    else if (r[9] === -2) box.appendChild(el("p", {}, "Same config as run " + r[10] + " (unchanged)."));
    else {
      box.appendChild(el("p", {}, "Changes since run " + r[10] + ":"));
      box.appendChild(diffBlock(data.diffs[r[9]]));
    }
    var details = el("details");
    details.appendChild(el("summary", {}, "Config snapshot (as recorded: stored secrets and URL passwords masked; values written in the config are shown as written)"));
    details.appendChild(el("pre", { "class": "config" }, data.configs[r[8]]));
    box.appendChild(details);
    document.querySelectorAll("button.mark").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-run")) === r[0]));
    });
    if (focus) h.focus();
    shown = r;
  }

  // the Gantt chart is drawn for the width it is shown at: drawn again when that changes
  var shown = null, pending = false;
  window.addEventListener("resize", function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      var box = document.getElementById("detail"), old = box.querySelector("svg.gantt");
      if (shown && old && Number(old.getAttribute("width")) !== Math.max(280, Math.floor(box.clientWidth))) {
        box.replaceChild(gantt(shown[11], shown[4], box.clientWidth), old);
      }
    });
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-run]") : null;
    if (!target) return;
    event.preventDefault();
    var id = Number(target.getAttribute("data-run"));
    show(id, true);
    if (history.replaceState) history.replaceState(null, "", "#run-" + id);
  });

  // migration table: filter and sort
  var table = document.getElementById("migrations-table");
  var filter = document.getElementById("mig-filter");
  var statusSel = document.getElementById("mig-status");
  var count = document.getElementById("mig-count");
  function applyFilter() {
    var q = filter.value.trim().toLowerCase(), st = statusSel.value, shown = 0;
    table.tBodies[0].querySelectorAll("tr").forEach(function (tr) {
      var ok = (!q || tr.textContent.toLowerCase().indexOf(q) >= 0) && (!st || tr.cells[3].textContent.trim() === st);
      tr.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = shown + " rows";
  }
  filter.addEventListener("input", applyFilter);
  statusSel.addEventListener("change", applyFilter);
  table.querySelectorAll("th button[data-sort]").forEach(function (button) {
    button.addEventListener("click", function () {
      var col = Number(button.getAttribute("data-sort")), numeric = button.hasAttribute("data-numeric");
      var th = button.parentNode, asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        var c = numeric ? (Number(x || -1) - Number(y || -1)) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    });
  });

  // marks of this run
  (data.highlight || []).forEach(function (id) {
    document.querySelectorAll('button.mark[data-run="' + id + '"]').forEach(function (b) { b.classList.add("this-run"); });
  });
  function newest() {
    var best = null;
    data.runs.forEach(function (r) { if (best === null || r[3] > best[3] || (r[3] === best[3] && r[0] > best[0])) best = r; });
    return best === null ? null : best[0];
  }
  var fromHash = /^#run-(\d+)$/.exec(location.hash);
  var first = fromHash ? Number(fromHash[1]) : (data.highlight && data.highlight[0]) || newest();
  if (first !== null) show(first, false);
})();
