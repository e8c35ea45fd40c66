/**
 * The report page's only style sheet and script, inlined into the HTML and allowed by their sha256 in its
 * Content-Security-Policy (nothing else may run or load). The script reads the data block (JSON) and builds the
 * tooltip and the layer panel with textContent only: no string from the data is ever parsed as HTML.
 */

export const STYLE = `
:root{color-scheme:light;--ink:#1d2430;--mute:#5b6676;--line:#d5dbe3;--keep:#c9d3df;--pull:#f0b45e;--chg:#d2453c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:18px 20px 40px}
h1{font-size:20px;margin:0 0 2px}h2{font-size:16px;margin:22px 0 8px}
.sub{color:var(--mute);margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 12px;padding:0}
.cards div{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:150px}
.cards dt{color:var(--mute);font-size:12px}.cards dd{margin:0;font-weight:600}
.cards .pull{border-left:5px solid var(--pull)}.cards .chg{border-left:5px solid var(--chg)}
.bars{display:block;width:100%;max-width:640px;height:auto;margin:2px 0 8px}
.bars text{font-size:11px;fill:var(--ink)}.bars .k{fill:var(--keep)}.bars .p{fill:var(--pull)}.bars .c{fill:var(--chg)}
.notes{color:var(--mute);margin:4px 0 10px;padding-left:18px}
.legend{display:flex;flex-wrap:wrap;gap:14px;color:var(--mute);font-size:12px;margin:4px 0 6px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.legend .k{background:var(--keep)}.legend .p{background:var(--pull)}.legend .c{background:var(--chg)}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px}
#treemap{display:block;width:100%;height:auto;cursor:pointer}
#treemap .lb{fill:#3a4452}#treemap .lb.sel{stroke:#111;stroke-width:3}
#treemap .tiles rect{stroke:#fff;stroke-width:.5}
#treemap .k rect{fill:var(--keep)}#treemap .p rect{fill:var(--pull)}#treemap rect.c{fill:var(--chg)}
#treemap text{font-size:10px;fill:#111;pointer-events:none}
#treemap text.s{fill:#3a4452}#treemap text.lt{fill:#fff;font-weight:600}
#tip{position:fixed;z-index:2;pointer-events:none;max-width:440px;background:#fff;border:1px solid #9aa5b4;border-radius:5px;padding:7px 9px;box-shadow:0 3px 10px rgba(0,0,0,.18);font-size:12px}
#tip>*{display:block;overflow-wrap:anywhere}#tip code{color:var(--mute);font-size:11px}#tip .c{color:var(--chg);font-weight:600}
#detail{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px 14px;margin-top:10px}
#detail h2{margin:0 0 4px}#detail p{margin:4px 0;overflow-wrap:anywhere}#detail ol{margin:4px 0;padding-left:22px;columns:2}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}td.r{color:var(--mute);overflow-wrap:anywhere}
tbody tr{cursor:pointer}tbody tr:hover,tbody tr.sel{background:#eef3fa}tr.pulled td:first-child{box-shadow:inset 4px 0 var(--pull)}
details{margin:6px 0}details ul{margin:4px 0;font-size:12px;overflow-wrap:anywhere}
`;

export const SCRIPT = `"use strict";
(function () {
  var root = document.getElementById("report");
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var svg = document.getElementById("treemap");
  var tip = document.getElementById("tip");
  var detail = document.getElementById("detail");
  var boxes = {};
  svg.querySelectorAll("rect.lb").forEach(function (r) { boxes[r.getAttribute("data-l")] = r; });
  var rows = {};
  document.querySelectorAll("#layer-table tr[data-l]").forEach(function (r) { rows[r.getAttribute("data-l")] = r; });
  var UNITS = ["KiB", "MiB", "GiB", "TiB"];
  function bytes(n) {
    if (n < 1024) return n + " bytes";
    var v = n / 1024, i = 0;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return n + " bytes (" + v.toFixed(1) + " " + UNITS[i] + ")";
  }
  function name(p) {
    var b = p.slice(p.lastIndexOf("/") + 1);
    return /^[0-9a-z]{32}-/.test(b) ? b.slice(33) : b;
  }
  function count(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + "\\u2026" : s; }
  function add(parent, tag, text, cls) {
    var e = document.createElement(tag);
    e.textContent = text;
    if (cls) e.className = cls;
    parent.appendChild(e);
    return e;
  }
  function where(l) {
    if (l.pull === undefined) return "";
    return l.pull ? "pulled by a host that has the previous image" : "already on a host that has the previous image";
  }
  /** The layer (index) and item (index, or -1) under an element of the treemap. */
  function hit(t) {
    if (!t || !t.getAttribute) return undefined;
    var i = t.getAttribute("data-i");
    if (i !== null) return { layer: data.items[+i][2], item: +i };
    var l = t.getAttribute("data-l");
    if (l === null && t.parentNode && t.parentNode.getAttribute) l = t.parentNode.getAttribute("data-l");
    return l === null ? undefined : { layer: +l, item: -1 };
  }
  function hide() { tip.hidden = true; }
  function show(e) {
    var h = hit(e.target);
    if (!h) return hide();
    var l = data.layers[h.layer];
    tip.replaceChildren();
    if (h.item >= 0) {
      var it = data.items[h.item];
      add(tip, "strong", name(it[0]));
      add(tip, "code", it[0]);
      add(tip, "span", bytes(it[1]));
      if (it[3]) add(tip, "span", "changed or added since the previous image", "c");
    } else add(tip, "strong", l.label);
    add(tip, "span", "layer " + l.n + " (" + count(l.items, "item") + ", " + bytes(l.bytes) + ")" + (l.status ? ": " + l.status + ", " + where(l) : ""));
    if (l.reason) add(tip, "em", clip(l.reason, 300));
    tip.hidden = false;
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = Math.max(0, e.clientX - tip.offsetWidth - 14);
    if (y + tip.offsetHeight > window.innerHeight) y = Math.max(0, e.clientY - tip.offsetHeight - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function select(k) {
    var l = data.layers[k];
    Object.keys(boxes).forEach(function (b) { boxes[b].classList.toggle("sel", +b === k); });
    Object.keys(rows).forEach(function (r) { rows[r].classList.toggle("sel", +r === k); });
    detail.replaceChildren();
    add(detail, "h2", "Layer " + l.n + ": " + l.label);
    add(detail, "p", count(l.items, "store item") + ", " + bytes(l.bytes) + (l.status ? "; " + l.status + ", " + where(l) : ""));
    add(detail, "p", "Why: " + (l.reason || "(no reason given)"));
    var items = [];
    data.items.forEach(function (it, i) { if (it[2] === k) items.push(it); });
    items.sort(function (a, b) { return b[1] - a[1]; });
    if (items.length > 0) {
      var ol = document.createElement("ol");
      items.slice(0, 40).forEach(function (it) { add(ol, "li", name(it[0]) + " \\u2014 " + bytes(it[1]), it[3] ? "c" : ""); });
      detail.appendChild(ol);
      if (items.length > 40) add(detail, "p", "\\u2026 and " + (items.length - 40) + " smaller items");
    }
    detail.hidden = false;
  }
  svg.addEventListener("mousemove", show);
  svg.addEventListener("mouseleave", hide);
  svg.addEventListener("click", function (e) { var h = hit(e.target); if (h) select(h.layer); });
  var table = document.getElementById("layer-table");
  function pick(e) {
    var tr = e.target.closest ? e.target.closest("tr[data-l]") : null;
    if (tr && (e.type === "click" || e.key === "Enter" || e.key === " ")) { e.preventDefault(); select(+tr.getAttribute("data-l")); }
  }
  table.addEventListener("click", pick);
  table.addEventListener("keydown", pick);
  root.setAttribute("data-script-ms", String(Math.round(performance.now())));
  window.addEventListener("load", function () {
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { root.setAttribute("data-ready-ms", String(Math.round(performance.now()))); });
    });
  });
})();
`;
