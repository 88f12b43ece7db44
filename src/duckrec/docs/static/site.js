// duckrec docs: lineage selection (upstream / downstream highlight), search, tests toggle.
// Plain DOM code, no library, nothing fetched: the site works from file://.
(function () {
  "use strict";
  var svg = document.getElementById("lineage");
  if (!svg) return;
  var info = JSON.parse(document.getElementById("node-data").textContent);
  var nodes = {}, parents = {}, children = {}, edges = [];
  svg.querySelectorAll("g.node").forEach(function (g) {
    var id = g.getAttribute("data-id");
    nodes[id] = g; parents[id] = []; children[id] = [];
  });
  svg.querySelectorAll("path.edge").forEach(function (e) {
    var from = e.getAttribute("data-from"), to = e.getAttribute("data-to");
    edges.push(e);
    if (parents[to]) parents[to].push(from);
    if (children[from]) children[from].push(to);
    if (to.indexOf("test.") === 0) e.classList.add("to-test");
  });

  function reach(start, next) {
    var seen = {}, stack = [start];
    while (stack.length) {
      var id = stack.pop();
      (next[id] || []).forEach(function (n) { if (!seen[n]) { seen[n] = true; stack.push(n); } });
    }
    return seen;
  }

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function select(id) {
    var panel = document.getElementById("panel");
    Object.keys(nodes).forEach(function (k) { nodes[k].classList.remove("selected", "upstream", "downstream"); });
    edges.forEach(function (e) { e.classList.remove("active-up", "active-down"); });
    if (!id || !nodes[id]) { svg.classList.remove("has-selection"); return null; }
    var up = reach(id, parents), down = reach(id, children);
    svg.classList.add("has-selection");
    nodes[id].classList.add("selected");
    Object.keys(up).forEach(function (k) { nodes[k] && nodes[k].classList.add("upstream"); });
    Object.keys(down).forEach(function (k) { nodes[k] && nodes[k].classList.add("downstream"); });
    edges.forEach(function (e) {
      var f = e.getAttribute("data-from"), t = e.getAttribute("data-to");
      if ((up[t] || t === id) && (up[f])) e.classList.add("active-up");
      if ((down[f] || f === id) && down[t]) e.classList.add("active-down");
    });
    var d = info[id] || {};
    panel.innerHTML = "";
    panel.appendChild(text("h2", d.relation || d.name || id));
    panel.appendChild(text("p", (d.kind || "") + (d.materialized && d.kind === "model" ? " · " + d.materialized : "")
      + (d.status ? " · last run " + d.status : "")));
    if (d.description) panel.appendChild(text("p", d.description));
    panel.appendChild(text("p", Object.keys(up).length + " upstream (orange), " + Object.keys(down).length
      + " downstream (purple)"));
    var a = text("a", "open its page");
    a.href = d.href || nodes[id].getAttribute("data-href");
    panel.appendChild(a);
    return { upstream: Object.keys(up), downstream: Object.keys(down) };
  }

  Object.keys(nodes).forEach(function (id) {
    var g = nodes[id];
    g.addEventListener("click", function (ev) { ev.stopPropagation(); select(id); });
    g.addEventListener("dblclick", function () { window.location.href = g.getAttribute("data-href"); });
    g.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { if (g.classList.contains("selected")) window.location.href = g.getAttribute("data-href"); else select(id); }
    });
  });
  svg.addEventListener("click", function () { select(null); });

  var search = document.getElementById("lineage-search");
  search.addEventListener("change", function () {
    var q = search.value.trim().toLowerCase();
    if (!q) { select(null); return; }
    var hit = Object.keys(nodes).filter(function (id) { return id.toLowerCase().indexOf(q) >= 0; })
      .sort(function (a, b) { return a.length - b.length; })[0];
    if (hit) { select(hit); nodes[hit].scrollIntoView({ block: "center", inline: "center" }); }
  });
  document.getElementById("lineage-tests").addEventListener("change", function (ev) {
    svg.classList.toggle("hide-tests", !ev.target.checked);
  });
  var width = parseFloat(svg.getAttribute("width")), height = parseFloat(svg.getAttribute("height")), zoom = 1;
  function setZoom(z) {
    zoom = Math.max(0.05, Math.min(z, 3));
    svg.setAttribute("width", (width * zoom).toFixed(0));
    svg.setAttribute("height", (height * zoom).toFixed(0));
  }
  document.getElementById("zoom-in").addEventListener("click", function () { setZoom(zoom * 1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { setZoom(zoom / 1.25); });
  // The whole drawing in the visible box: every layer shows, none cut off in a corner.
  // Never enlarged past 1: a small project stays at its natural size.
  function fit() {
    var box = document.getElementById("graph");
    var z = Math.min(box.clientWidth / width, box.clientHeight / height, 1);
    if (z > 0) setZoom(z * 0.98);  // 2% margin: a scrollbar must not appear and hide the edge
  }
  document.getElementById("zoom-fit").addEventListener("click", fit);
  fit();  // open fitted: the first view shows the whole DAG
  window.duckrecLineage = { zoom: setZoom, fit: fit, select: select, nodes: function () { return Object.keys(nodes); } };
})();
