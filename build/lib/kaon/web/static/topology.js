// The graph: networks as vertical bars, routers and instances as boxes, a
// line from a box to each network it has a port on (Horizon's layout, drawn
// by hand in SVG: no library, no build step). Exposes window.kaonGraph.draw.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const BAR_GAP = 190, BAR_W = 14, ROW_H = 56, BOX_W = 140, BOX_H = 34, TOP = 50, LEFT = 30;

  function node(tag, attrs, text) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function short(s, n) {
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  // Devices worth a box: routers and instances, each with the networks it touches.
  function devices(view) {
    const byDevice = new Map();
    for (const p of view.ports) {
      if (!p.device_id) continue;
      if (!byDevice.has(p.device_id)) byDevice.set(p.device_id, []);
      byDevice.get(p.device_id).push(p);
    }
    const out = [];
    for (const r of view.routers) {
      const nets = new Set((byDevice.get(r.id) || []).map((p) => p.network_id));
      const gw = r.external_gateway_info && r.external_gateway_info.network_id;
      if (gw) nets.add(gw);
      out.push({id: r.id, kind: "router", label: r.name || r.id, status: r.status, nets, failed: false,
                port: (byDevice.get(r.id) || [])[0]});
    }
    for (const vm of view.vms) {
      const ports = vm.ports.map((id) => view.ports.find((p) => p.id === id)).filter(Boolean);
      out.push({id: vm.id, kind: "vm", label: vm.id, status: vm.status, failed: vm.binding_failed,
                nets: new Set(ports.map((p) => p.network_id)), port: ports[0]});
    }
    return out;
  }

  function draw(svg, view, onSelect) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const column = new Map(view.networks.map((n, i) => [n.id, i]));
    const boxes = devices(view);
    const height = TOP + Math.max(1, boxes.length) * ROW_H + 30;
    const width = LEFT + Math.max(1, view.networks.length) * BAR_GAP + BOX_W;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const barX = (i) => LEFT + i * BAR_GAP;
    view.networks.forEach((n, i) => {
      const g = node("g", {class: `node network status-${n.status}`, "data-id": n.id});
      g.appendChild(node("rect", {x: barX(i), y: TOP - 20, width: BAR_W, height: height - TOP, rx: 4}));
      g.appendChild(node("text", {x: barX(i), y: TOP - 28}, short(n.name || n.id, 24)));
      g.appendChild(node("title", {}, `${n.name} (${n.id}) ${n.status}`));
      svg.appendChild(g);
    });
    boxes.forEach((d, row) => {
      const y = TOP + row * ROW_H;
      const cols = [...d.nets].map((id) => column.get(id)).filter((c) => c !== undefined);
      const first = cols.length ? Math.min(...cols) : 0;
      const x = barX(first) + BAR_W + 24;
      for (const c of cols) {
        const bx = barX(c) + BAR_W / 2;
        svg.appendChild(node("line", {class: "link", x1: Math.min(bx, x), y1: y + BOX_H / 2,
                                      x2: Math.max(bx, x + BOX_W), y2: y + BOX_H / 2}));
      }
      const cls = `node ${d.kind} status-${d.status}` + (d.failed ? " binding-failed" : "");
      const g = node("g", {class: cls, "data-id": d.id, tabindex: 0});
      g.appendChild(node("rect", {x, y, width: BOX_W, height: BOX_H, rx: 6}));
      g.appendChild(node("text", {x: x + 8, y: y + 14}, (d.kind === "router" ? "⇄ " : "▣ ") + short(d.label, 17)));
      g.appendChild(node("text", {x: x + 8, y: y + 28, class: "sub"}, d.failed ? "binding failed" : d.status));
      g.appendChild(node("title", {}, `${d.kind} ${d.label} ${d.status}`));
      if (d.port) g.addEventListener("click", () => onSelect(d.port.id));
      svg.appendChild(g);
    });
  }

  window.kaonGraph = {draw};
})();
