// Calls page: one row per call, filtered (channel, outcome, month, call id) and kept live by
// server-sent events that patch rows in place (focus and selection stay); a row opens its
// breakdown (a drawer on narrow screens).
"use strict";
(() => {
  const { api, applyBalance, el, live, initialData, showError, flash, reducedMotion } = Dash;
  const data = initialData();
  const body = document.getElementById("calls-body");
  const detail = document.getElementById("detail");
  const olderBtn = document.getElementById("calls-older");
  const form = document.getElementById("call-filters");
  const errorBox = document.getElementById("calls-error");
  const calls = new Map(); // call_id -> {row, receivedAt, tr}
  let selected = null;
  let nextCursor = null;
  let opener = null; // the row that opened the drawer gets focus back when it closes

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
    return row.active ? "pill active" : "pill outcome-" + (row.outcome || "unknown");
  }

  // Does a row pushed live belong in the filtered list?
  function matches(row) {
    const f = Object.fromEntries(new FormData(form).entries());
    if (f.channel && row.channel !== f.channel) return false;
    if (f.outcome && row.outcome !== f.outcome) return false;
    if (f.call_id && !row.call_id.startsWith(f.call_id.trim())) return false;
    if (f.month && row.month !== f.month) return false; // the month filter: authorization, IST
    return true;
  }

  function newTr(row) {
    const tr = el("tr", { tabindex: 0, dataset: { callId: row.call_id } },
      el("td", { class: "started", title: row.call_id }),
      el("td", { class: "channel" }),
      el("td", { class: "num duration" }),
      el("td", {}, el("span", { "data-testid": "call-status" })),
      el("td", { class: "num cost", "data-testid": "call-cost" }));
    tr.addEventListener("click", () => select(row.call_id, tr));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(row.call_id, tr); } });
    return tr;
  }

  // Write a row's values into its <tr>, touching only what changed.
  function paint(entry) {
    const { row, tr } = entry;
    const set = (node, text) => { if (node.textContent !== text) node.textContent = text; };
    tr.dataset.status = row.status;
    tr.dataset.outcome = row.outcome || "";
    tr.classList.toggle("selected", row.call_id === selected);
    set(tr.querySelector(".started"), row.started_label);
    set(tr.querySelector(".channel"), row.channel_label);
    set(tr.querySelector(".duration"), duration(liveSeconds(entry)));
    const pill = tr.querySelector('[data-testid="call-status"]');
    pill.className = statusClass(row);
    set(pill, row.status_label);
    set(tr.querySelector(".cost"), costText(row));
  }

  // Newest first by the time shown (the call's start); ISO UTC strings compare as times.
  function before(a, b) {
    if (a.started_at !== b.started_at) return a.started_at > b.started_at;
    return a.call_id > b.call_id;
  }

  function place(entry) {
    let next = null;
    for (const other of body.querySelectorAll("tr[data-call-id]")) {
      if (other === entry.tr) continue;
      const o = calls.get(other.dataset.callId);
      if (o && before(entry.row, o.row)) { next = other; break; }
    }
    if (entry.tr.nextElementSibling !== next || entry.tr.parentNode !== body) {
      if (next) body.insertBefore(entry.tr, next); else body.append(entry.tr);
    }
  }

  function upsert(row, live) {
    if (live && !matches(row)) return;
    let entry = calls.get(row.call_id);
    const changed = !entry || entry.row.status !== row.status || entry.row.cost_paisa !== row.cost_paisa;
    if (!entry) { entry = { row, receivedAt: Date.now(), tr: newTr(row) }; calls.set(row.call_id, entry); }
    else { entry.row = row; entry.receivedAt = Date.now(); }
    paint(entry);
    place(entry);
    if (live && changed) flash(entry.tr);
    body.querySelector("tr.empty")?.remove();
  }

  function clear() {
    calls.clear();
    body.textContent = "";
  }

  function showEmpty() {
    if (calls.size) return;
    const text = Filters.active(form) ? "No calls match these filters." : "No calls yet. They appear here live as they start.";
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 5 }, text)));
  }

  setInterval(() => {
    for (const entry of calls.values()) {
      if (entry.row.active) entry.tr.querySelector(".duration").textContent = duration(liveSeconds(entry));
    }
  }, 1000);

  // --- breakdown (a side panel; a drawer over the page on narrow screens) ---------------------
  function money(testid, paisa, cls) {
    return el("td", { class: "num " + (cls || ""), "data-testid": testid, "data-paisa": paisa }, formatINR(paisa));
  }

  function closeDetail() {
    selected = null;
    detail.hidden = true;
    document.body.classList.remove("drawer-open");
    for (const entry of calls.values()) paint(entry);
    if (opener && document.contains(opener)) opener.focus();
    const url = new URLSearchParams(window.location.search);
    url.delete("call");
    window.history.replaceState(null, "", window.location.pathname + (url.toString() ? "?" + url : ""));
  }

  function renderDetail(d) {
    detail.textContent = "";
    detail.hidden = false;
    document.body.classList.add("drawer-open");
    detail.dataset.callId = d.call_id;
    const close = el("button", { type: "button", class: "link close", "aria-label": "Close", "data-testid": "detail-close" }, "×");
    close.addEventListener("click", closeDetail);
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
      if (!c.lines.length) tbody.append(el("tr", { class: "usage" }, el("td", { colspan: 2, class: "muted" }, "no usage")));
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
    let note;
    if (d.active && !d.has_breakdown) note = "The call is in progress; its cost is posted when it ends.";
    else if (d.active) note = "The call is in progress: the running cost so far.";
    else if (d.outcome === "refused") note = "Refused at authorization (insufficient balance): not charged.";
    else if (d.total_paisa === 0 && !["completed", "voicemail", "abandoned"].includes(d.outcome)) note = "Not charged: only completed, voicemail and abandoned calls are charged.";
    else note = "Each component is Σ quantity × unit price, rounded half-up to the paisa.";
    detail.append(el("p", { class: "muted note" }, note));
    // What was charged: at hangup, then adjustments for late usage (their sum is the total).
    if (d.charges.length) {
      const charged = el("tbody");
      for (const c of d.charges) {
        charged.append(el("tr", { "data-testid": "charge-row", dataset: { kind: c.kind, txId: c.id } },
          el("th", {}, c.kind_label + " ", el("span", { class: "muted" }, c.created_label)),
          el("td", { class: "num", "data-paisa": -c.amount_paisa }, formatINR(-c.amount_paisa))));
      }
      detail.append(el("table", { class: "breakdown charges", "data-testid": "charges" }, charged));
    }
    if (d.adjustment_paisa) {
      detail.append(el("p", { class: "note", "data-testid": "detail-adjustment", "data-paisa": d.adjustment_paisa },
        `Includes ${formatINR(d.adjustment_paisa)} for usage reported after the call ended (a call adjustment).`));
    }
    const q = new URLSearchParams({ call_id: d.call_id });
    detail.append(el("a", { href: "/billing?" + q, class: "small", "data-testid": "detail-transactions" }, "Its transactions"));
  }

  async function select(callId, fromRow) {
    const first = selected !== callId;
    selected = callId;
    if (fromRow) opener = fromRow;
    for (const entry of calls.values()) paint(entry);
    try {
      const d = await api("/dashboard/api/calls/" + encodeURIComponent(callId));
      if (selected !== callId) return;
      renderDetail(d);
      if (first && document.body.classList.contains("drawer-open") && window.matchMedia("(max-width: 760px)").matches) detail.focus({ preventScroll: reducedMotion() });
      const url = new URLSearchParams(window.location.search);
      url.set("call", callId);
      window.history.replaceState(null, "", window.location.pathname + "?" + url);
    } catch (error) {
      detail.hidden = false;
      detail.textContent = "Could not load the call: " + error.message;
    }
  }
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !detail.hidden) closeDetail(); });
  // The drawer's backdrop (body::after on narrow screens) closes it.
  document.body.addEventListener("click", (e) => { if (e.target === document.body && document.body.classList.contains("drawer-open")) closeDetail(); });

  // --- filtered list --------------------------------------------------------------------------
  function query(cursor) {
    const q = Filters.params(form);
    if (cursor) q.set("cursor", cursor);
    return q;
  }

  let request = 0; // only the latest request's answer is shown
  async function load(cursor) {
    const mine = ++request;
    try {
      const page = await api("/dashboard/api/calls?" + query(cursor));
      if (mine !== request) return;
      showError(errorBox, null);
      if (!cursor) clear();
      page.items.forEach((row) => upsert(row, false));
      nextCursor = page.next_cursor;
      olderBtn.hidden = !nextCursor;
      showEmpty();
    } catch (error) {
      if (mine === request) showError(errorBox, error);
    }
  }

  function applyFilters() {
    Filters.remember(form, { call: selected });
    document.getElementById("calls-csv").href = "/dashboard/api/calls.csv?" + Filters.params(form);
    load(null);
  }

  olderBtn.addEventListener("click", () => load(nextCursor));
  Filters.watch(form, applyFilters);

  // --- start ----------------------------------------------------------------------------------
  Filters.restore(form);
  if (Filters.active(form)) applyFilters();
  else {
    data.calls.items.forEach((row) => upsert(row, false));
    nextCursor = data.calls.next_cursor;
    olderBtn.hidden = !nextCursor;
    showEmpty();
    document.getElementById("calls-csv").href = "/dashboard/api/calls.csv";
  }
  const linked = new URLSearchParams(window.location.search).get("call");
  if (linked) select(linked, null);
  live({
    call: (row) => {
      upsert(row, true);
      if (row.call_id === selected) select(row.call_id, null);
    },
    balance: (summary) => applyBalance(summary.balance),
  }, document.getElementById("live"));
})();
