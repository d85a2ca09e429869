// The radar: a flow run's tasks and their dependencies, laid out with dagre (vendored), or by
// layered() below for a large graph, and drawn as SVG. The server sends the graph
// (app/blueprints/ui/graph.py) as JSON inside each [data-radar] element; this file draws it,
// and draws it again when the run page's live poll swaps in a new one, keeping the view
// (zoom, pan, expanded groups, opened subflows), or when a poll sends only the task runs
// that changed (a patch of their states).
//
// - A node is a task; a task with several runs (a .map()) is a group showing their count and
//   a bar of their states. Its ▸ expands it into one cell per run (each links to the run).
// - A task run that started a subflow can be opened (▸): the subflow's own radar, fetched
//   from the server, is drawn inside the node, and may itself hold open subflows.
// - Drag to pan; Ctrl + wheel, the + / − buttons or the + / − keys zoom; Fit (or 0) fits.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var NODE_WIDTH = 230, NODE_HEIGHT = 34, GROUP_HEIGHT = 44, HEADER = 34;
  var CELL = 14, CELL_GAP = 3, PAD = 8, MAX_COLUMNS = 40;
  var MIN_SCALE = 0.05, MAX_SCALE = 4;
  var NODE_SEP = 14, RANK_SEP = 56;
  // Above this many nodes a graph is laid out by layered() below instead of dagre: dagre
  // takes ~60 ms for 100 tasks but ~500 ms for 1,000 distinct ones (its network simplex,
  // crossing minimisation and Brandes-Köpf positioning, and the garbage of its graphlib).
  var DAGRE_MAX_NODES = 200;
  var GLYPHS = {
    SCHEDULED: "◷", PENDING: "…", RUNNING: "▶", COMPLETED: "✓", FAILED: "✗",
    CANCELLED: "⊘", CRASHED: "⚠", PAUSED: "‖", CANCELLING: "⊘"
  };
  // Which of its runs' states a group's outline shows: the one that needs attention first.
  var PRIORITY = ["CRASHED", "FAILED", "RUNNING", "CANCELLING", "PAUSED", "PENDING",
                  "SCHEDULED", "CANCELLED", "COMPLETED"];

  // The view of each flow run's radar, kept across redraws: {scale, x, y, fitted,
  // expanded: {key: true}, opened: {subflow run id: data | "loading" | Error}}.
  var views = {};
  // The drawn radar of each flow run on the page (what a poll's patch applies to).
  var roots = {};

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function text(parent, x, y, content, cls) {
    var node = el("text", { x: x, y: y, "class": cls || "" }, parent);
    node.textContent = content;
    return node;
  }

  function stateOf(node) {
    var counts = {};
    node.members.forEach(function (m) { counts[m[2]] = (counts[m[2]] || 0) + 1; });
    node.counts = counts;
    for (var i = 0; i < PRIORITY.length; i++) { if (counts[PRIORITY[i]]) { return PRIORITY[i]; } }
    return node.members[0][2];
  }

  function label(value, room) {
    var most = Math.max(4, Math.floor(room / 7.2));
    return value.length <= most ? value : value.slice(0, most - 1) + "…";
  }

  // Lay out one flow run's graph; opened subflows are laid out first (inside out), so a
  // node's size is known before it is placed. Returns {width, height, nodes, edges}; a run
  // without task runs gets room for a line saying so (dagre would size its empty graph
  // -Infinity).
  function layout(data, view, prefix) {
    if (!data.nodes.length) {
      return { width: NODE_WIDTH, height: NODE_HEIGHT, nodes: [], edges: [], empty: true };
    }
    var nodes = data.nodes.map(function (node) {
      var item = { node: node, key: prefix + node.id, state: stateOf(node), width: NODE_WIDTH };
      var only = node.members.length === 1 ? node.members[0] : null;
      item.subflow = only && only[4];
      var opened = item.subflow && view.opened[item.subflow];
      if (opened && typeof opened === "object" && opened.nodes) {
        item.child = layout(opened, view, item.subflow + ":");
        item.width = Math.max(NODE_WIDTH, item.child.width + 2 * PAD);
        item.height = HEADER + item.child.height + PAD;
      } else if (node.members.length > 1 && view.expanded[item.key]) {
        item.columns = Math.min(node.members.length,
          Math.max(12, Math.min(MAX_COLUMNS, Math.ceil(Math.sqrt(node.members.length * 4)))));
        var rows = Math.ceil(node.members.length / item.columns);
        item.width = Math.max(NODE_WIDTH, item.columns * (CELL + CELL_GAP) + 2 * PAD);
        item.height = GROUP_HEIGHT + rows * (CELL + CELL_GAP) + PAD;
      } else {
        item.height = node.members.length > 1 ? GROUP_HEIGHT : NODE_HEIGHT;
      }
      return item;
    });
    var laid = (nodes.length > DAGRE_MAX_NODES ? layered : layoutDagre)(nodes, data.edges);
    laid.nodes = nodes;
    return laid;
  }

  // Place `nodes` (items with their width and height) with dagre, setting each item's x and
  // y (its top left corner); returns {width, height, edges: [{points, count}]}.
  function layoutDagre(nodes, edges) {
    var graph = new dagre.graphlib.Graph();
    graph.setGraph({ rankdir: "LR", nodesep: NODE_SEP, ranksep: RANK_SEP,
                     marginx: PAD, marginy: PAD });
    graph.setDefaultEdgeLabel(function () { return {}; });
    nodes.forEach(function (item) {
      graph.setNode(item.node.id, { width: item.width, height: item.height });
    });
    edges.forEach(function (edge) { graph.setEdge(edge[0], edge[1], { count: edge[2] }); });
    dagre.layout(graph);
    nodes.forEach(function (item) {
      var placed = graph.node(item.node.id);
      item.x = placed.x - item.width / 2;
      item.y = placed.y - item.height / 2;
    });
    var size = graph.graph();
    return {
      width: size.width || 0, height: size.height || 0,
      edges: graph.edges().map(function (e) {
        var edge = graph.edge(e);
        return { points: edge.points, count: edge.count };
      })
    };
  }

  // The same contract as layoutDagre(), in linear time or nearly, for large graphs: a plain
  // layered (Sugiyama) layout, left to right, with dagre's spacing.
  // - Ranks: a node is one rank right of its furthest upstream node (longest path); a node
  //   without upstream nodes moves right up to its nearest downstream one. In a cycle (a task
  //   whose runs fed another task's and were fed by it), the edge found closing it does not
  //   rank, and is drawn backwards.
  // - Order within a rank: first appearance (the server sends nodes in order of their first
  //   run), then one sweep rightwards ordering each rank by the mean position of the nodes'
  //   upstream nodes in their ranks (barycentre), and one leftwards by their downstream
  //   nodes': fewer crossings, no optimum sought.
  // - Vertical place: top down, each node at the mean height of its upstream nodes when
  //   there is room, else below its predecessor in the rank; so a chain runs straight.
  // No dummy nodes: an edge over several ranks is one straight run, which may cross nodes.
  function layered(nodes, edgeList) {
    var count = nodes.length, index = {}, i;
    nodes.forEach(function (item, n) { index[item.node.id] = n; });
    var outs = [], ins = [], rank = [];
    for (i = 0; i < count; i++) { outs.push([]); ins.push([]); rank.push(0); }
    var edges = edgeList.map(function (edge) {
      var e = { from: index[edge[0]], to: index[edge[1]], count: edge[2] };
      outs[e.from].push(e);
      ins[e.to].push(e);
      return e;
    });
    // Depth first from each node in turn: an edge back to a node still on the path closes a
    // cycle and is marked `back`; the reversed finishing order is a topological one of the rest.
    var order = [], visit = [], stack;
    for (i = 0; i < count; i++) {
      if (visit[i]) { continue; }
      visit[i] = 1;
      stack = [[i, 0]];
      while (stack.length) {
        var top = stack[stack.length - 1], n = top[0];
        if (top[1] < outs[n].length) {
          var e = outs[n][top[1]++];
          if (visit[e.to] === 1) { e.back = true; }
          else if (!visit[e.to]) { visit[e.to] = 1; stack.push([e.to, 0]); }
        } else {
          visit[n] = 2;
          order.push(n);
          stack.pop();
        }
      }
    }
    order.reverse();
    order.forEach(function (n) {
      ins[n].forEach(function (e) {
        if (!e.back) { rank[n] = Math.max(rank[n], rank[e.from] + 1); }
      });
    });
    var ranks = [], position = [];
    for (i = 0; i < count; i++) {
      var nearest = Infinity;
      if (!ins[i].some(function (e) { return !e.back; })) {
        outs[i].forEach(function (e) { if (!e.back) { nearest = Math.min(nearest, rank[e.to]); } });
        if (nearest !== Infinity) { rank[i] = nearest - 1; }
      }
      (ranks[rank[i]] || (ranks[rank[i]] = [])).push(i);
    }
    ranks = ranks.filter(Boolean);
    ranks.forEach(function (members) { members.forEach(function (n, p) { position[n] = p; }); });
    var sweep = function (list, neighbours, end) {
      list.forEach(function (members) {
        var key = members.map(function (n) {
          var total = 0, seen = 0;
          neighbours[n].forEach(function (e) {
            var other = e[end];
            if (!e.back && other !== n) { total += position[other]; seen++; }
          });
          return seen ? total / seen : position[n];
        });
        var keyed = members.map(function (n, p) { return { n: n, key: key[p], p: p }; });
        keyed.sort(function (a, b) { return a.key - b.key || a.p - b.p; });
        keyed.forEach(function (k, p) { members[p] = k.n; position[k.n] = p; });
      });
    };
    sweep(ranks.slice(1), ins, "from");
    sweep(ranks.slice(0, -1).reverse(), outs, "to");
    // Columns: each rank as wide as its widest node, nodes centred in it (as dagre does).
    var x = PAD, bottom = 0, centre = [];
    ranks.forEach(function (members) {
      var width = 0, y = PAD - NODE_SEP;
      members.forEach(function (n) { width = Math.max(width, nodes[n].width); });
      members.forEach(function (n) {
        var item = nodes[n], total = 0, seen = 0;
        ins[n].forEach(function (e) {
          if (!e.back && centre[e.from] !== undefined) { total += centre[e.from]; seen++; }
        });
        var top = y + NODE_SEP;
        item.y = seen ? Math.max(top, total / seen - item.height / 2) : top;
        item.x = x + (width - item.width) / 2;
        centre[n] = item.y + item.height / 2;
        y = item.y + item.height;
      });
      bottom = Math.max(bottom, y);
      x += width + RANK_SEP;
    });
    return {
      width: count ? x - RANK_SEP + PAD : 0, height: count ? bottom + PAD : 0,
      edges: edges.map(function (e) {
        var from = nodes[e.from], to = nodes[e.to];
        var start = { x: from.x + from.width, y: centre[e.from] };
        var end = { x: to.x, y: centre[e.to] };
        // Out of the source's right side and into the target's left side horizontally (ranks
        // are at least RANK_SEP apart), so the arrowheads line up as dagre's do.
        return {
          count: e.count,
          points: [start, { x: start.x + RANK_SEP / 2, y: start.y },
                   { x: end.x - RANK_SEP / 2, y: end.y }, end]
        };
      })
    };
  }

  function drawEdges(parent, edges) {
    var group = el("g", { "class": "radar-edges" }, parent);
    edges.forEach(function (edge) {
      var d = edge.points.map(function (p, i) { return (i ? "L" : "M") + p.x.toFixed(1) + "," + p.y.toFixed(1); }).join(" ");
      el("path", { d: d, "marker-end": "url(#radar-arrow)" }, group);
      if (edge.count > 1) {
        var middle = edge.points[Math.floor(edge.points.length / 2)];
        text(group, middle.x, middle.y - 4, "×" + edge.count, "radar-edge-count");
      }
    });
  }

  function toggle(parent, x, y, open, action, target, title) {
    var button = el("g", {
      "class": "radar-toggle", tabindex: "0", role: "button", "data-action": action,
      "data-target": target, "aria-expanded": open ? "true" : "false"
    }, parent);
    el("title", {}, button).textContent = title;
    el("rect", { x: x, y: y, width: 20, height: 20, rx: 4 }, button);
    text(button, x + 10, y + 15, open ? "▾" : "▸", "radar-toggle-glyph");
  }

  function drawNode(parent, item, root) {
    var node = item.node, member = node.members[0];
    var group = el("g", { "class": "radar-node state-" + item.state.toLowerCase(), "data-task": node.id,
                          transform: "translate(" + item.x + "," + item.y + ")" }, parent);
    el("rect", { width: item.width, height: item.height, rx: 6, "class": "radar-box" }, group);
    var many = node.members.length > 1;
    var room = item.width - (many || item.subflow ? 44 : 20);
    var title = (GLYPHS[item.state] || "•") + " " + label(node.name, room - 40) +
      (many ? "  ×" + node.members.length : "");
    if (many) {
      var expanded = !!root.view.expanded[item.key];
      toggle(group, 6, 6, expanded, "expand", item.key,
             (expanded ? "Collapse " : "Expand ") + node.members.length + " runs of " + node.name);
      text(group, 32, 21, title, "radar-label");
      drawStateBar(group, item);
      if (item.columns) { drawCells(group, item, root); }
    } else {
      var x = 10;
      if (item.subflow) {
        var opened = root.view.opened[item.subflow];
        toggle(group, 6, 7, !!opened, "open", item.subflow,
               (opened ? "Close" : "Open") + " the subflow run of " + node.name);
        x = 32;
      }
      var link = el("a", { href: item.subflow ? root.flowRunUrl + item.subflow : root.taskUrl + member[0],
                           "data-task-run": member[0] }, group);
      el("title", {}, link).textContent = member[1] + " (" + (member[3] || member[2]) + ")" +
        (item.subflow ? ": subflow run" : "");
      text(link, x, 22, title, "radar-label");
      var opened2 = item.subflow && root.view.opened[item.subflow];
      if (opened2 === "loading") { text(group, x, 22 + 18, "loading…", "radar-note"); }
      if (opened2 instanceof Error) { text(group, x, 22 + 18, opened2.message, "radar-note"); }
      if (item.child) {
        var inner = el("g", { transform: "translate(" + PAD + "," + HEADER + ")", "class": "radar-subflow" }, group);
        el("rect", { width: item.child.width, height: item.child.height, rx: 4, "class": "radar-inner" }, inner);
        drawGraph(inner, item.child, root);
      }
    }
  }

  function drawStateBar(group, item) {
    var x = 8, width = item.width - 16, total = item.node.members.length;
    PRIORITY.slice().reverse().forEach(function (state) {
      var count = item.node.counts[state];
      if (!count) { return; }
      var w = width * count / total;
      var bar = el("rect", { x: x, y: 32, width: Math.max(w, 1), height: 5,
                             "class": "radar-bar state-" + state.toLowerCase() }, group);
      el("title", {}, bar).textContent = count + " " + state.toLowerCase();
      x += w;
    });
  }

  function drawCells(group, item, root) {
    var cells = el("g", { "class": "radar-cells" }, group);
    item.node.members.forEach(function (member, i) {
      var column = i % item.columns, row = Math.floor(i / item.columns);
      var link = el("a", { href: member[4] ? root.flowRunUrl + member[4] : root.taskUrl + member[0],
                           "data-task-run": member[0] }, cells);
      el("title", {}, link).textContent = member[1] + " (" + (member[3] || member[2]) + ")";
      el("rect", { x: PAD + column * (CELL + CELL_GAP), y: GROUP_HEIGHT + row * (CELL + CELL_GAP),
                   width: CELL, height: CELL, rx: 2,
                   "class": "radar-cell state-" + member[2].toLowerCase() }, link);
    });
  }

  function drawGraph(parent, laid, root) {
    if (laid.empty) { text(parent, PAD + 2, 22, "No task runs", "radar-note"); }
    drawEdges(parent, laid.edges);
    laid.nodes.forEach(function (item) { drawNode(parent, item, root); });
  }

  function apply(root) {
    var v = root.view;
    root.layer.setAttribute("transform", "translate(" + v.x + "," + v.y + ") scale(" + v.scale + ")");
  }

  function fit(root) {
    var box = root.svg.getBoundingClientRect();
    var width = Math.max(box.width, 100), height = Math.max(box.height, 100);
    var scale = Math.min(1, width / Math.max(root.laid.width, 1), height / Math.max(root.laid.height, 1));
    root.view.scale = Math.max(MIN_SCALE, scale);
    root.view.x = (width - root.laid.width * root.view.scale) / 2;
    root.view.y = Math.max(0, (height - root.laid.height * root.view.scale) / 2);
    root.view.fitted = true;
    apply(root);
  }

  function zoom(root, factor, cx, cy) {
    var v = root.view, box = root.svg.getBoundingClientRect();
    if (cx === undefined) { cx = box.width / 2; cy = box.height / 2; }
    var scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, v.scale * factor));
    v.x = cx - (cx - v.x) * scale / v.scale;
    v.y = cy - (cy - v.y) * scale / v.scale;
    v.scale = scale;
    v.fitted = false;
    apply(root);
  }

  // Lay out and draw (or draw again) the radar of element `host`.
  function render(root) {
    var started = performance.now();
    root.laid = layout(root.data, root.view, "");
    draw(root, started);
  }

  // Draw the radar as last laid out, its nodes' states and subflows taken again from their
  // members: what a patch of states needs (a node's size does not depend on its states).
  function redraw(root) {
    var started = performance.now();
    root.laid.nodes.forEach(function (item) {
      item.state = stateOf(item.node);
      var only = item.node.members.length === 1 ? item.node.members[0] : null;
      item.subflow = only && only[4];
    });
    draw(root, started);
  }

  function draw(root, started) {
    var svg = root.svg;
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var defs = el("defs", {}, svg);
    var marker = el("marker", { id: "radar-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
                                markerWidth: 8, markerHeight: 8, orient: "auto" }, defs);
    el("path", { d: "M0,0 L8,4 L0,8 z", "class": "radar-arrowhead" }, marker);
    // Drawn detached, then attached at once: one insertion into the page, not thousands.
    root.layer = el("g", { "class": "radar-layer" });
    drawGraph(root.layer, root.laid, root);
    svg.appendChild(root.layer);
    svg.style.height = Math.min(640, Math.max(160, root.laid.height + 24)) + "px";
    if (root.view.fitted || root.view.scale === undefined) { fit(root); } else { apply(root); }
    root.host.setAttribute("data-rendered-ms", (performance.now() - started).toFixed(1));
    root.host.setAttribute("data-drawn", "");
  }

  function openSubflow(root, id) {
    var view = root.view;
    if (view.opened[id]) { delete view.opened[id]; render(root); return; }
    view.opened[id] = "loading";
    render(root);
    fetch(root.radarUrl.replace("{id}", id), { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("could not load the subflow (" + response.status + ")"); }
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var script = page.querySelector(".radar-data");
        if (!script) { throw new Error("could not load the subflow"); }
        if (view.opened[id] === "loading") { view.opened[id] = JSON.parse(script.textContent); }
      })
      .catch(function (error) { if (view.opened[id]) { view.opened[id] = error; } })
      .then(function () { render(root); });
  }

  function act(root, target) {
    var action = target.getAttribute("data-action"), key = target.getAttribute("data-target");
    if (action === "expand") {
      if (root.view.expanded[key]) { delete root.view.expanded[key]; } else { root.view.expanded[key] = true; }
      render(root);
    } else if (action === "open") {
      openSubflow(root, key);
    }
  }

  function attach(host) {
    var runId = host.getAttribute("data-flow-run");
    var view = views[runId] || (views[runId] = { expanded: {}, opened: {}, fitted: true });
    var root = roots[runId] = {
      host: host, view: view, svg: host.querySelector("svg.radar-canvas"),
      data: JSON.parse(host.querySelector(".radar-data").textContent),
      taskUrl: host.getAttribute("data-task-url"),
      flowRunUrl: host.getAttribute("data-flow-run-url"),
      radarUrl: host.getAttribute("data-radar-url")
    };
    render(root);
    host.addEventListener("click", function (event) {
      var zoomButton = event.target.closest("[data-zoom]");
      if (zoomButton) {
        var how = zoomButton.getAttribute("data-zoom");
        if (how === "fit") { fit(root); } else { zoom(root, how === "in" ? 1.25 : 0.8); }
        return;
      }
      var target = event.target.closest("[data-action]");
      if (target) { act(root, target); }
    });
    host.addEventListener("keydown", function (event) {
      var target = event.target.closest && event.target.closest("[data-action]");
      if (target && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        act(root, target);
      } else if (event.target === root.svg) {
        var step = 40, v = root.view, handled = true;
        if (event.key === "+" || event.key === "=") { zoom(root, 1.25); }
        else if (event.key === "-") { zoom(root, 0.8); }
        else if (event.key === "0") { fit(root); }
        else if (event.key === "ArrowLeft") { v.x += step; }
        else if (event.key === "ArrowRight") { v.x -= step; }
        else if (event.key === "ArrowUp") { v.y += step; }
        else if (event.key === "ArrowDown") { v.y -= step; }
        else { handled = false; }
        if (handled) { event.preventDefault(); v.fitted = false; apply(root); }
      }
    });
    root.svg.addEventListener("wheel", function (event) {
      if (!event.ctrlKey && !event.metaKey) { return; }
      event.preventDefault();
      var box = root.svg.getBoundingClientRect();
      zoom(root, event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    var drag = null;
    root.svg.addEventListener("pointerdown", function (event) {
      if (event.button !== 0 || event.target.closest("a, [data-action]")) { return; }
      drag = { x: event.clientX, y: event.clientY, vx: root.view.x, vy: root.view.y };
      root.svg.setPointerCapture(event.pointerId);
      root.svg.classList.add("dragging");
    });
    root.svg.addEventListener("pointermove", function (event) {
      if (!drag) { return; }
      root.view.x = drag.vx + event.clientX - drag.x;
      root.view.y = drag.vy + event.clientY - drag.y;
      root.view.fitted = false;
      apply(root);
    });
    var stop = function () { drag = null; root.svg.classList.remove("dragging"); };
    root.svg.addEventListener("pointerup", stop);
    root.svg.addEventListener("pointercancel", stop);
  }

  function enhance(scope) {
    if (typeof dagre === "undefined") { return; }
    var hosts = scope.matches && scope.matches("[data-radar]") ? [scope] : [];
    scope.querySelectorAll("[data-radar]:not([data-drawn])").forEach(function (h) { hosts.push(h); });
    hosts.forEach(function (host) { if (!host.hasAttribute("data-drawn")) { attach(host); } });
  }

  // A poll that brings only the task runs that changed brings their members too
  // (script#radar-patch: [[id, name, state type, state name, subflow run id], ...]): they
  // take their members' places in the drawn radar, which is drawn again without a new
  // layout (100 tasks take dagre about 60 ms).
  function applyPatches() {
    document.querySelectorAll("script#radar-patch:not([data-applied])").forEach(function (patch) {
      patch.setAttribute("data-applied", "");
      var root = roots[patch.getAttribute("data-flow-run")];
      var changed = JSON.parse(patch.textContent);
      if (!root || !root.host.isConnected || !changed.length) { return; }
      var byId = {};
      changed.forEach(function (member) { byId[member[0]] = member; });
      root.data.nodes.forEach(function (node) {
        node.members = node.members.map(function (member) { return byId[member[0]] || member; });
      });
      redraw(root);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document.body); });
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
  document.addEventListener("htmx:afterSwap", applyPatches);
})();
