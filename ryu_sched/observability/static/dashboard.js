// The operator page: polls /dashboard/state once a second and redraws; actions go through the
// same Neutron API calls (and registry actions) as any client.
"use strict";
(function () {
  const POLL_MS = 1000;
  const $ = (sel) => document.querySelector(sel);
  let token = sessionStorage.getItem("ryu-sched-token") || "";

  function headers(json) {
    const h = {};
    if (token) h["X-Auth-Token"] = token;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  async function call(method, path, body) {
    const response = await fetch(path, {method, headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body)});
    if (response.status === 401 || response.status === 403) {
      $("#auth").hidden = false;
      throw new Error("admin credentials required");
    }
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).NeutronError.message; } catch (e) { /* keep */ }
      throw new Error(`${method} ${path}: ${message}`);
    }
    return response.status === 204 ? null : response.json();
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function button(parent, label, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", () => action().then(refresh).catch(showError));
    parent.appendChild(b);
    return b;
  }

  function showError(err) { $("#error").textContent = err.message; }

  function drawAgents(state) {
    const body = $("#agents tbody");
    body.replaceChildren();
    for (const a of state.agents) {
      const row = document.createElement("tr");
      row.dataset.agentHost = a.host;
      row.dataset.agentType = a.agent_type;
      row.dataset.agentId = a.id;
      row.dataset.alive = String(a.alive);
      cell(row, a.agent_type);
      cell(row, a.host);
      cell(row, a.availability_zone);
      cell(row, a.alive ? "alive" : "dead");
      cell(row, `${a.heartbeat_age.toFixed(1)} s / ${state.agent_down_time} s`);
      cell(row, a.admin_state_up ? "enabled" : "disabled").dataset.adminStateUp =
        String(a.admin_state_up);
      cell(row, a.load);
      const actions = cell(row, "");
      button(actions, a.admin_state_up ? "Disable" : "Enable",
        () => call("PUT", `/v2.0/agents/${a.id}`, {agent: {admin_state_up: !a.admin_state_up}}))
        .dataset.action = "toggle";
      button(actions, "Drain", () => call("POST", `/dashboard/actions/drain`, {agent_id: a.id}))
        .dataset.action = "drain";
      body.appendChild(row);
    }
    drawChart(state.agents);
  }

  function drawChart(agents) {
    const svg = $("#load-chart");
    const width = 640, barH = 16, gap = 4, labelW = 200;
    const max = Math.max(1, ...agents.map((a) => a.load));
    svg.setAttribute("width", width);
    svg.setAttribute("height", Math.max(barH, agents.length * (barH + gap)));
    svg.replaceChildren();
    const ns = "http://www.w3.org/2000/svg";
    agents.forEach((a, i) => {
      const y = i * (barH + gap);
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", 0);
      label.setAttribute("y", y + barH - 4);
      label.textContent = `${a.host} (${a.agent_type})`;
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", labelW);
      bar.setAttribute("y", y);
      bar.setAttribute("height", barH);
      bar.setAttribute("width", Math.max(1, (width - labelW - 40) * a.load / max));
      bar.setAttribute("class", a.alive ? "bar" : "bar dead");
      const value = document.createElementNS(ns, "text");
      value.setAttribute("x", labelW + 4 + (width - labelW - 40) * a.load / max);
      value.setAttribute("y", y + barH - 4);
      value.textContent = a.load;
      svg.append(label, bar, value);
    });
  }

  function drawPlacements(state) {
    const body = $("#placements tbody");
    body.replaceChildren();
    const hostOf = Object.fromEntries(state.agents.map((a) => [a.id, a]));
    for (const p of state.placements) {
      const row = document.createElement("tr");
      row.dataset.kind = p.kind;
      row.dataset.objectId = p.id;
      if (p.unhosted) row.classList.add("unhosted");
      cell(row, p.kind);
      cell(row, p.id);
      cell(row, p.agents.map((id, i) => {
        const host = hostOf[id] ? hostOf[id].host : id;
        return p.ha_states.length ? `${host} (${p.ha_states[i]})` : host;
      }).join(", "));
      cell(row, `${p.live_agents} / ${p.wanted}`);
      const move = cell(row, "");
      const agentType = p.kind === "network" ? "DHCP agent" : "L3 agent";
      const select = document.createElement("select");
      for (const a of state.agents) {
        if (a.agent_type !== agentType || p.agents.includes(a.id) || !a.alive) continue;
        const option = document.createElement("option");
        option.value = a.id;
        option.textContent = a.host;
        select.appendChild(option);
      }
      if (select.options.length && p.agents.length) {
        move.appendChild(select);
        button(move, "Move", () => call("POST", "/dashboard/actions/move", {
          kind: p.kind, id: p.id, from_agent_id: p.agents[0], to_agent_id: select.value}));
      }
      body.appendChild(row);
    }
  }

  function drawSwitches(state) {
    const body = $("#switches tbody");
    body.replaceChildren();
    for (const s of state.switches) {
      const row = document.createElement("tr");
      row.dataset.dpid = s.dpid;
      row.dataset.connected = String(s.connected);
      cell(row, s.dpid);
      cell(row, s.connected ? "yes" : "no");
      cell(row, s.flows);
      body.appendChild(row);
    }
  }

  // Timeline entries: moves ("network" | "router": an object from one host to another),
  // "agent" (judged dead, or back) and "failover" (all of a dead agent's objects placed).
  function drawTimeline(state) {
    const body = $("#timeline tbody");
    body.replaceChildren();
    for (const m of state.timeline) {
      const row = document.createElement("tr");
      row.dataset.moveKind = m.kind;
      row.dataset.reason = m.reason;
      row.dataset.objectId = m.object_id;
      row.dataset.fromHost = m.from_host;
      const isMove = m.kind === "network" || m.kind === "router";
      cell(row, m.time);
      cell(row, m.kind);
      cell(row, isMove ? m.object_id : `agent ${m.object_id}`);
      cell(row, m.from_host);
      cell(row, m.to_host);
      cell(row, m.kind === "failover" ? `failover: ${m.moved} moved` : m.reason);
      cell(row, m.duration === null ? "" : `${m.duration.toFixed(2)} s`);
      body.appendChild(row);
    }
  }

  async function refresh() {
    const state = await call("GET", "/dashboard/state");
    drawAgents(state);
    // a Move target being chosen is not rebuilt under the operator's hands
    if (!$("#placements").contains(document.activeElement)) drawPlacements(state);
    drawSwitches(state);
    drawTimeline(state);
    const alive = state.agents.filter((a) => a.alive).length;
    const summary = $("#summary");
    summary.textContent = `${alive}/${state.agents.length} agents alive · ` +
      `unhosted: ${state.unhosted.network} networks, ${state.unhosted.router} routers · ` +
      (state.leader ? "leader" : "follower");
    summary.dataset.state = "ready";
    $("#error").textContent = "";
  }

  $("#auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("#token").value;
    sessionStorage.setItem("ryu-sched-token", token);
    $("#auth").hidden = true;
    refresh().catch(showError);
  });

  function loop() {
    refresh().catch(showError).finally(() => setTimeout(loop, POLL_MS));
  }
  loop();
})();
