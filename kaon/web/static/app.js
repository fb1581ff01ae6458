// The page: the live view (Server-Sent Events from /ui/api/events), the
// lists, a port's details and its trace form. Everything the server sends
// is shown with textContent: names are user input.
"use strict";

let view = null;
let selected = null;

function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") n.addEventListener("click", v);
    else n.setAttribute(k, v);
  }
  for (const c of children) n.append(c === null || c === undefined ? "" : c);
  return n;
}

function fill(id, header, rows) {
  const table = document.getElementById(id);
  table.replaceChildren(el("tr", {}, ...header.map((h) => el("th", {}, h))), ...rows);
}

function status(s) {
  return el("span", {class: `status status-${s}`}, s);
}

function bindingCell(p) {
  if (p["binding:vif_type"] !== "binding_failed") return p["binding:vif_type"] || "";
  return el("span", {class: "binding-failure"}, "binding_failed: " + (p["binding:failure_reason"] || "no reason given"));
}

function findingsFor(subject) {
  return view.findings.filter((f) => f.subject === subject).map((f) => el("div", {class: `finding ${f.severity}`}, f.message));
}

function render() {
  document.getElementById("who").textContent = `project ${view.project_id}` + (view.is_admin ? " (admin)" : "");
  window.kaonGraph.draw(document.getElementById("graph"), view, selectPort);
  const findings = document.getElementById("findings");
  findings.replaceChildren(...(view.findings.length
    ? view.findings.map((f) => el("div", {class: `finding ${f.severity}`}, `${f.subject}: ${f.message}`))
    : [el("p", {class: "hint"}, view.is_admin ? "No findings (kaon doctor checks the stored state)." : "Findings are shown to admins.")]));
  fill("networks", ["name", "id", "status", "type", "subnets", "shared", "external"], view.networks.map((n) =>
    el("tr", {"data-id": n.id}, el("td", {}, n.name), el("td", {class: "id"}, n.id), el("td", {}, status(n.status)),
       el("td", {}, n["provider:network_type"] || ""), el("td", {}, String(n.subnets.length)),
       el("td", {}, String(n.shared)), el("td", {}, String(n["router:external"])))));
  fill("subnets", ["name", "cidr", "gateway", "network", "dhcp"], view.subnets.map((s) =>
    el("tr", {"data-id": s.id}, el("td", {}, s.name), el("td", {}, s.cidr), el("td", {}, s.gateway_ip || ""),
       el("td", {class: "id"}, s.network_id), el("td", {}, String(s.enable_dhcp)))));
  fill("routers", ["name", "id", "status", "external network"], view.routers.map((r) =>
    el("tr", {"data-id": r.id}, el("td", {}, r.name), el("td", {class: "id"}, r.id), el("td", {}, status(r.status)),
       el("td", {class: "id"}, (r.external_gateway_info && r.external_gateway_info.network_id) || ""))));
  fill("vms", ["instance", "status", "hosts", "ports"], view.vms.map((vm) =>
    el("tr", {"data-id": vm.id, class: vm.binding_failed ? "binding-failed" : ""}, el("td", {class: "id"}, vm.id),
       el("td", {}, status(vm.status)), el("td", {}, vm.hosts.join(", ")), el("td", {}, String(vm.ports.length)))));
  fill("ports", ["name", "id", "status", "owner", "addresses", "host", "binding"], view.ports.map((p) =>
    el("tr", {"data-id": p.id, class: "clickable", onclick: () => selectPort(p.id)}, el("td", {}, p.name),
       el("td", {class: "id"}, p.id), el("td", {}, status(p.status)), el("td", {}, p.device_owner),
       el("td", {}, p.fixed_ips.map((ip) => ip.ip_address).join(", ")), el("td", {}, p["binding:host_id"] || ""),
       el("td", {}, bindingCell(p), ...findingsFor(p.id)))));
  fill("hosts", ["host", "agents", "generation", "applied", "ports", "findings"], view.hosts.map((h) =>
    el("tr", {"data-id": h.name}, el("td", {}, h.name),
       el("td", {}, ...h.agents.map((a) => el("div", {class: a.alive ? "alive" : "dead"},
         `${a.agent_type} ${a.alive ? ":-)" : "XXX"}${a.admin_state_up ? "" : " (disabled)"}`))),
       el("td", {}, h.generation === null ? "" : String(h.generation)),
       el("td", {class: h.converged === false ? "behind" : ""}, h.applied_generation === null ? "" : String(h.applied_generation)),
       el("td", {}, String(h.ports)), el("td", {}, ...findingsFor(h.name)))));
  if (selected) showPort(selected);
}

function selectPort(id) {
  selected = id;
  showPort(id);
}

function showPort(id) {
  const port = view.ports.find((p) => p.id === id);
  const panel = document.getElementById("details");
  if (!port) { panel.hidden = true; return; }
  panel.hidden = false;
  panel.dataset.id = id;
  document.getElementById("details-title").textContent = `Port ${port.name || port.id}`;
  const rows = Object.keys(port).sort().map((k) => {
    const v = port[k];
    const text = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    return el("tr", {class: k === "binding:failure_reason" && v ? "binding-failure" : ""}, el("th", {}, k), el("td", {}, text));
  });
  document.getElementById("details-table").replaceChildren(...rows);
}

async function trace(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const out = document.getElementById("trace-result");
  const body = {from_port: selected, to: f.get("to"), protocol: f.get("protocol")};
  if (f.get("port")) body.port = Number(f.get("port"));
  const r = await fetch("/ui/api/trace", {method: "POST", headers: {"content-type": "application/json"},
                                          body: JSON.stringify(body)});
  let data = null;
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  // kaon trace's own lines, one hop each (the JSON form is at GET /v2.0/trace).
  out.textContent = r.ok ? data.trace.lines.join("\n") : `${r.status}: ${(data && data.NeutronError && data.NeutronError.message) || r.statusText}`;
}

function live() {
  const badge = document.getElementById("live");
  const source = new EventSource("/ui/api/events");
  source.addEventListener("topology", (ev) => {
    view = JSON.parse(ev.data);
    badge.textContent = "live";
    badge.className = "live on";
    render();
  });
  source.addEventListener("error", async () => {
    badge.textContent = "reconnecting…";
    badge.className = "live";
    // EventSource retries by itself; a 401 means the session ended.
    const r = await fetch("/ui/api/topology", {method: "GET"});
    if (r.status === 401) window.location.assign("/ui/login");
  });
}

document.getElementById("details-close").addEventListener("click", () => {
  selected = null;
  document.getElementById("details").hidden = true;
});
document.getElementById("trace").addEventListener("submit", (ev) => { trace(ev).catch(console.error); });
live();
