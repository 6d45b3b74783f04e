// Calls page: one row per call, kept live by server-sent events; a row opens its breakdown.
"use strict";
(() => {
  const { api, applyBalance, el, live, initialData } = Dash;
  const data = initialData();
  const body = document.getElementById("calls-body");
  const detail = document.getElementById("detail");
  const olderBtn = document.getElementById("calls-older");
  const calls = new Map(); // call_id -> {row, receivedAt}
  let selected = null;
  let nextBefore = data.calls.next_before;

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }
  function liveSeconds(entry) {
    const row = entry.row;
    return row.active ? row.duration_seconds + (Date.now() - entry.receivedAt) / 1000 : row.duration_seconds;
  }
  function costText(row) {
    if (row.cost_paisa === null || row.cost_paisa === undefined) return row.active ? "—" : formatINR(0);
    return formatINR(row.cost_paisa) + (row.running_cost ? " so far" : "");
  }
  function statusClass(row) {
    if (row.active) return "pill active";
    return "pill outcome-" + (row.outcome || "unknown");
  }

  function upsert(row) {
    calls.set(row.call_id, { row, receivedAt: Date.now() });
  }

  // Newest first by the time shown (the call's start); ISO UTC strings compare as times.
  function order(a, b) {
    if (a.row.started_at !== b.row.started_at) return a.row.started_at < b.row.started_at ? 1 : -1;
    return a.row.call_id < b.row.call_id ? 1 : -1;
  }

  function render() {
    const entries = Array.from(calls.values()).sort(order);
    body.textContent = "";
    if (!entries.length) {
      body.append(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "No calls yet. They appear here live as they start.")));
    }
    for (const entry of entries) {
      const row = entry.row;
      const tr = el("tr", {
        tabindex: 0,
        class: row.call_id === selected ? "selected" : null,
        dataset: { callId: row.call_id, status: row.status, outcome: row.outcome || "" },
      },
        el("td", { title: row.call_id }, row.started_label),
        el("td", {}, row.channel_label),
        el("td", { class: "num duration" }, duration(liveSeconds(entry))),
        el("td", {}, el("span", { class: statusClass(row), "data-testid": "call-status" }, row.status_label)),
        el("td", { class: "num cost", "data-testid": "call-cost" }, costText(row)));
      tr.addEventListener("click", () => select(row.call_id));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(row.call_id); } });
      body.append(tr);
    }
  }

  setInterval(() => {
    body.querySelectorAll('tr[data-status="active"]').forEach((tr) => {
      const entry = calls.get(tr.dataset.callId);
      if (entry) tr.querySelector(".duration").textContent = duration(liveSeconds(entry));
    });
  }, 1000);

  // --- breakdown ------------------------------------------------------------------------------
  function money(testid, paisa, cls) {
    return el("td", { class: "num " + (cls || ""), "data-testid": testid, "data-paisa": paisa }, formatINR(paisa));
  }

  function renderDetail(d) {
    detail.textContent = "";
    detail.hidden = false;
    detail.dataset.callId = d.call_id;
    const close = el("button", { type: "button", class: "link close", "aria-label": "Close" }, "×");
    close.addEventListener("click", () => { selected = null; detail.hidden = true; render(); });
    detail.append(
      close,
      el("h2", {}, "Call breakdown"),
      el("div", { class: "call-id muted", "data-testid": "detail-call-id" }, d.call_id),
      el("dl", { class: "facts" },
        el("dt", {}, "Channel"), el("dd", {}, d.channel_label),
        el("dt", {}, "Outcome"), el("dd", { "data-testid": "detail-status" }, d.status_label + (d.hangup_reason ? ` (${d.hangup_reason})` : "")),
        el("dt", {}, "Started"), el("dd", {}, d.started_label + " IST"),
        el("dt", {}, "Duration"), el("dd", {}, duration(d.duration_seconds)),
        el("dt", {}, "Rate card"), el("dd", {}, d.rate_card_version ? "v" + d.rate_card_version : "—")));
    const table = el("table", { class: "breakdown", "data-testid": "breakdown" });
    const tbody = el("tbody");
    for (const c of d.components) {
      tbody.append(el("tr", { class: "component" },
        el("th", {}, `${c.label} `, el("span", { class: "muted" }, `(${c.help})`)),
        money("bd-" + c.component, c.paisa)));
      if (!c.lines.length) {
        tbody.append(el("tr", { class: "usage" }, el("td", { colspan: 2, class: "muted" }, "no usage")));
      }
      for (const line of c.lines) {
        const price = line.unit_price_inr !== null ? ` × ₹${line.unit_price_inr}` : "";
        const exact = line.cost_exact ? ` = ${line.cost_exact}` : "";
        tbody.append(el("tr", { class: "usage", "data-testid": "usage-" + c.component },
          el("td", { colspan: 2 }, el("code", {}, line.sku), ` ${line.quantity} ${line.unit_label}${price}${exact}`)));
      }
    }
    tbody.append(
      el("tr", { class: "subtotal" }, el("th", {}, "Provider total"), money("bd-provider-total", d.provider_total_paisa)),
      el("tr", {}, el("th", {}, `+ ${d.margin_percent}% margin`), money("bd-margin", d.margin_paisa)),
      el("tr", { class: "total" }, el("th", {}, d.active ? "Running total" : "Total charged"), money("bd-total", d.total_paisa)));
    table.append(tbody);
    detail.append(table);
    let note = null;
    if (d.active && !d.has_breakdown) note = "The call is in progress; its cost is posted when it ends.";
    else if (d.active) note = "The call is in progress: the running cost so far.";
    else if (d.outcome === "refused") note = "Refused at authorization (insufficient balance): not charged.";
    else if (d.total_paisa === 0 && !["completed", "voicemail", "abandoned"].includes(d.outcome)) note = "Not charged: only completed, voicemail and abandoned calls are charged.";
    else note = "Each component is Σ quantity × unit price, rounded half-up to the paisa.";
    detail.append(el("p", { class: "muted note" }, note));
  }

  async function select(callId) {
    selected = callId;
    render();
    try {
      const d = await api("/dashboard/api/calls/" + encodeURIComponent(callId));
      if (selected === callId) renderDetail(d);
    } catch (error) {
      detail.hidden = false;
      detail.textContent = "Could not load the call: " + error.message;
    }
  }

  olderBtn.addEventListener("click", async () => {
    if (!nextBefore) return;
    const q = new URLSearchParams({ before_created_at: nextBefore.created_at, before_call_id: nextBefore.call_id });
    const page = await api("/dashboard/api/calls?" + q);
    page.items.forEach(upsert);
    nextBefore = page.next_before;
    olderBtn.hidden = !nextBefore;
    render();
  });

  data.calls.items.forEach(upsert);
  olderBtn.hidden = !nextBefore;
  render();
  live({
    call: (row) => {
      upsert(row);
      render();
      if (row.call_id === selected) select(row.call_id);
    },
    balance: (summary) => applyBalance(summary.balance),
  }, document.getElementById("live"));
})();
