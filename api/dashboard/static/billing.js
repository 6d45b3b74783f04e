// Billing page: live balances, daily spend chart, the month's statement and spend insight,
// filtered and paged transaction history (rows patched in place), CSV downloads, settings,
// coupon redeem.
"use strict";
(() => {
  const { api, applyBalance, el, live, initialData, showError, flash } = Dash;
  const data = initialData();
  const SVG = "http://www.w3.org/2000/svg";
  const LABELS = { llm: "LLM", stt: "STT", tts: "TTS", sip: "SIP", phone: "Phone", web: "Web", whatsapp: "WhatsApp", chat: "Chat" };
  const KIND_LABELS = {
    topup: "Top-up", promo_grant: "Promo credit", coupon: "Coupon", call_charge: "Calls",
    call_adjustment: "Call adjustments", api_charge: "osmAPI requests", refund: "Refunds",
    refund_reversal: "Refunds reversed", promo_expiry: "Promo expired", adjustment: "Adjustments",
  };

  // --- chart: one bar per day of the month (IST), heights in pixels from integer paisa -------
  function renderChart(daily) {
    const box = document.getElementById("chart");
    box.textContent = "";
    const days = daily.days;
    const max = days.reduce((m, d) => Math.max(m, d.paisa), 0);
    const width = 1000, height = 190, left = 70, bottom = 22, top = 8;
    const plotW = width - left - 8, plotH = height - bottom - top;
    const slot = plotW / days.length;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Daily spend this month");
    const text = (x, y, s, anchor, cls) => {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", x); t.setAttribute("y", y);
      t.setAttribute("text-anchor", anchor); t.setAttribute("class", cls || "axis");
      t.textContent = s; svg.append(t);
    };
    const line = (y) => {
      const l = document.createElementNS(SVG, "line");
      l.setAttribute("x1", left); l.setAttribute("x2", width - 8);
      l.setAttribute("y1", y); l.setAttribute("y2", y); l.setAttribute("class", "grid");
      svg.append(l);
    };
    line(top); line(top + plotH);
    if (max === 0) text(left + plotW / 2, top + plotH / 2, "No spend yet this month", "middle", "axis empty");
    else text(left - 6, top + 4, formatINR(max), "end");
    text(left - 6, top + plotH + 4, formatINR(0), "end");
    days.forEach((d, i) => {
      const h = max > 0 ? Math.round((d.paisa * plotH) / max) : 0;
      const x = left + i * slot + slot * 0.15;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", x.toFixed(1));
      rect.setAttribute("y", top + plotH - Math.max(h, d.paisa > 0 ? 1 : 0));
      rect.setAttribute("width", (slot * 0.7).toFixed(1));
      rect.setAttribute("height", Math.max(h, d.paisa > 0 ? 1 : 0));
      rect.setAttribute("class", d.day === daily.today ? "bar today" : "bar");
      rect.dataset.date = d.date;
      rect.dataset.paisa = d.paisa;
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${d.date}: ${formatINR(d.paisa)}`;
      rect.append(title);
      svg.append(rect);
      if (d.day === 1 || d.day % 5 === 0) text(x + slot * 0.35, height - 6, String(d.day), "middle");
    });
    box.append(svg);
  }

  // --- statement and spend insight for a month ------------------------------------------------
  const monthInput = document.getElementById("statement-month");
  const monthError = document.getElementById("month-error");

  function moneyRow(label, paisa, testid, cls) {
    return el("tr", { class: cls || null }, el("th", {}, label),
      el("td", { class: "num", "data-testid": testid, "data-paisa": paisa }, formatINR(paisa)));
  }

  function renderStatement(s) {
    const body = document.getElementById("statement-body");
    body.textContent = "";
    document.getElementById("statement-label").textContent = `${s.first_day} to ${s.last_day} (IST)`;
    body.append(moneyRow("Opening balance", s.opening_balance_paisa, "st-opening", "subtotal"));
    for (const [kind, paisa] of Object.entries(s.credits)) body.append(moneyRow("+ " + (KIND_LABELS[kind] || kind), paisa, "st-credit-" + kind, "credit"));
    for (const [kind, paisa] of Object.entries(s.debits)) body.append(moneyRow("− " + (KIND_LABELS[kind] || kind), paisa, "st-debit-" + kind, "debit"));
    if (!s.transaction_count) body.append(el("tr", {}, el("td", { colspan: 2, class: "muted" }, "No transactions in this month.")));
    body.append(moneyRow("Closing balance", s.closing_balance_paisa, "st-closing", "total"));
    const q = new URLSearchParams({ from: s.first_day, to: s.last_day });
    document.getElementById("statement-csv").href = "/dashboard/api/transactions.csv?" + q;
  }

  function bars(box, items, total) {
    box.textContent = "";
    for (const item of items) {
      const share = total > 0 ? Math.round((item.paisa * 1000) / total) / 10 : 0;
      box.append(el("div", { class: "bar-row", "data-testid": "spend-" + item.key, "data-paisa": item.paisa },
        el("span", { class: "bar-label" }, item.label),
        el("span", { class: "bar-track" }, el("span", { class: "bar-fill", style: `width:${share}%` })),
        el("span", { class: "num" }, formatINR(item.paisa)),
        el("span", { class: "muted small bar-note" }, item.note || "")));
    }
  }

  function renderInsight(u) {
    const channels = u.by_channel.map((c) => ({
      key: c.channel, label: LABELS[c.channel], paisa: c.total_paisa,
      note: c.calls ? `${c.calls} call${c.calls === 1 ? "" : "s"}` + (c.per_minute_paisa !== null ? `, ${formatINR(c.per_minute_paisa)}/min` : "") : "",
    }));
    if (u.osmapi.requests) channels.push({ key: "osmapi", label: "osmAPI", paisa: u.osmapi.total_paisa, note: `${u.osmapi.requests} requests` });
    bars(document.getElementById("insight-channels"), channels, u.total_paisa);
    const components = u.by_component.map((c) => ({ key: c.component, label: LABELS[c.component], paisa: c.provider_paisa }));
    components.push({ key: "margin", label: "Margin", paisa: u.margin_paisa });
    bars(document.getElementById("insight-components"), components, u.total_paisa);
  }

  let monthRequest = 0; // only the latest request's answer is shown
  async function loadMonth() {
    const month = monthInput.value || data.month;
    const mine = ++monthRequest;
    try {
      const [statement, usage] = await Promise.all([
        api("/dashboard/api/statement?month=" + encodeURIComponent(month)),
        api("/dashboard/api/usage-summary?month=" + encodeURIComponent(month)),
      ]);
      if (mine !== monthRequest) return;
      showError(monthError, null);
      renderStatement(statement);
      renderInsight(usage);
    } catch (error) {
      if (mine === monthRequest) showError(monthError, error);
    }
  }
  monthInput.addEventListener("change", loadMonth);

  // --- transactions: filtered, paged newest first, new rows patched in at the top ------------
  const txForm = document.getElementById("tx-filters");
  const txBody = document.getElementById("tx-body");
  const txError = document.getElementById("tx-error");
  const olderBtn = document.getElementById("tx-older");
  const newestBtn = document.getElementById("tx-newest");
  let cursors = [null]; // the cursor of each page shown; last = current page
  let nextCursor = null;

  function txRow(tx) {
    const credit = tx.amount_paisa > 0;
    const description = tx.call_id
      ? el("a", { href: "/calls?call=" + encodeURIComponent(tx.call_id), "data-testid": "tx-call-link" }, tx.description)
      : tx.description;
    return el("tr", { dataset: { txId: tx.id } },
      el("td", {}, tx.created_label),
      el("td", {}, el("span", { class: "pill kind-" + tx.kind }, tx.kind_label)),
      el("td", {}, description, tx.receipt_url
        ? [" · ", el("a", { href: tx.receipt_url, target: "_blank", dataset: { testid: "tx-receipt" } }, "Receipt")] : null),
      el("td", { class: "num " + (credit ? "credit" : "debit") }, (credit ? "+" : "") + formatINR(tx.amount_paisa)),
      el("td", { class: "num" }, formatINR(tx.balance_after)));
  }

  function emptyRow() {
    return el("tr", { class: "empty" }, el("td", { colspan: 5 }, Filters.active(txForm) ? "No transactions match these filters." : "No transactions yet."));
  }

  // Rows already on screen are kept (a transaction never changes): focus and clicks in
  // flight stay on the same element.
  function showPage(page) {
    const shown = new Map(Array.from(txBody.querySelectorAll("tr[data-tx-id]"), (tr) => [tr.dataset.txId, tr]));
    const rows = page.items.map((tx) => shown.get(String(tx.id)) || txRow(tx));
    txBody.replaceChildren(...(rows.length ? rows : [emptyRow()]));
    nextCursor = page.next_cursor;
    olderBtn.hidden = !nextCursor;
    newestBtn.hidden = cursors.length <= 1;
  }

  // The first page again: rows already shown stay (and keep focus), new ones go on top.
  function mergeNewest(page) {
    const shown = new Set(Array.from(txBody.querySelectorAll("tr[data-tx-id]"), (tr) => tr.dataset.txId));
    const fresh = page.items.filter((tx) => !shown.has(String(tx.id)));
    if (!fresh.length) return;
    txBody.querySelector("tr.empty")?.remove();
    const rows = fresh.map(txRow);
    txBody.prepend(...rows);
    rows.forEach(flash);
    const limit = page.items.length;
    while (txBody.children.length > limit) txBody.lastElementChild.remove();
    if (page.next_cursor) { nextCursor = page.next_cursor; olderBtn.hidden = false; }
  }

  function txQuery(cursor) {
    const q = Filters.params(txForm);
    if (cursor) q.set("cursor", cursor);
    return q;
  }

  let txRequest = 0; // only the latest request's answer is shown
  async function loadPage(cursor, merge) {
    const mine = ++txRequest;
    try {
      const page = await api("/dashboard/api/transactions?" + txQuery(cursor));
      if (mine !== txRequest) return;
      showError(txError, null);
      if (merge) mergeNewest(page); else showPage(page);
    } catch (error) {
      if (mine === txRequest) showError(txError, error);
    }
  }

  function applyFilters() {
    cursors = [null];
    Filters.remember(txForm);
    document.getElementById("tx-csv").href = "/dashboard/api/transactions.csv?" + Filters.params(txForm);
    loadPage(null, false);
  }

  olderBtn.addEventListener("click", async () => { cursors.push(nextCursor); await loadPage(nextCursor, false); });
  newestBtn.addEventListener("click", async () => { cursors = [null]; await loadPage(null, false); });
  Filters.watch(txForm, applyFilters);

  // --- settings: the low-balance alert threshold ---------------------------------------------
  const settingsForm = document.getElementById("settings-form");
  const thresholdInput = document.getElementById("alert-threshold");
  const settingsError = document.getElementById("settings-error");
  const settingsDone = document.getElementById("settings-done");

  function showSettings(settings) {
    thresholdInput.value = settings.alert_threshold_paisa === null ? "" : rupeesText(settings.alert_threshold_paisa);
  }

  settingsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    settingsDone.hidden = true;
    const text = thresholdInput.value.trim();
    const paisa = text === "" ? null : parseINR(text);
    if (paisa === undefined) { showError(settingsError, new Error("Enter an amount in rupees, e.g. 500 or 500.50.")); return; }
    try {
      const settings = await api("/dashboard/api/settings", { method: "PATCH", body: { alert_threshold_paisa: paisa } });
      showError(settingsError, null);
      showSettings(settings);
      settingsDone.textContent = `Saved: alerts below ${formatINR(settings.effective_alert_threshold_paisa)}.`;
      settingsDone.hidden = false;
    } catch (error) {
      showError(settingsError, error);
    }
  });

  // --- coupon: code -> see the bonus -> Confirm -> promo balance updates at once -------------
  const dialog = document.getElementById("redeem");
  const codeInput = document.getElementById("coupon-code");
  const checkBtn = document.getElementById("coupon-check");
  const confirmBtn = document.getElementById("coupon-confirm");
  const errorBox = document.getElementById("coupon-error");
  const previewBox = document.getElementById("coupon-preview");
  const doneBox = document.getElementById("coupon-done");
  let previewed = null;

  function resetCoupon(keepCode) {
    previewed = null;
    if (!keepCode) codeInput.value = "";
    errorBox.hidden = true; previewBox.hidden = true; doneBox.hidden = true;
    confirmBtn.hidden = true; checkBtn.hidden = false;
  }

  document.querySelector('[data-testid="open-redeem"]').addEventListener("click", () => {
    resetCoupon(false);
    dialog.showModal();
    codeInput.focus();
  });
  document.getElementById("coupon-cancel").addEventListener("click", () => dialog.close());
  codeInput.addEventListener("input", () => { if (previewed !== null) resetCoupon(true); });
  codeInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); (confirmBtn.hidden ? checkBtn : confirmBtn).click(); }
  });

  checkBtn.addEventListener("click", async () => {
    const code = codeInput.value.trim();
    resetCoupon(true);
    if (!code) { showError(errorBox, new Error("Enter a coupon code.")); return; }
    checkBtn.disabled = true;
    try {
      const preview = await api("/dashboard/api/coupons/preview", { body: { code } });
      previewed = code;
      document.getElementById("coupon-bonus").textContent = formatINR(preview.bonus_paisa);
      previewBox.hidden = false; confirmBtn.hidden = false; checkBtn.hidden = true;
      confirmBtn.focus();
    } catch (error) {
      showError(errorBox, error);
    } finally {
      checkBtn.disabled = false;
    }
  });

  confirmBtn.addEventListener("click", async () => {
    if (previewed === null) return;
    confirmBtn.disabled = true;
    try {
      const result = await api("/dashboard/api/coupons/redeem", { body: { code: previewed } });
      applyBalance(result.balance);
      lastVersion = result.balance.version;
      if (cursors.length === 1) loadPage(null, true);
      previewBox.hidden = true; confirmBtn.hidden = true;
      doneBox.textContent = `${formatINR(result.bonus_paisa)} added to your promo balance.`;
      doneBox.hidden = false;
      previewed = null;
    } catch (error) {
      showError(errorBox, error);
    } finally {
      confirmBtn.disabled = false;
    }
  });

  // --- start ----------------------------------------------------------------------------------
  renderChart(data.daily);
  showSettings(data.settings);
  Filters.restore(txForm);
  if (Filters.active(txForm)) applyFilters();
  else { showPage(data.transactions); document.getElementById("tx-csv").href = "/dashboard/api/transactions.csv"; }
  loadMonth();
  let lastVersion = data.balance.version;
  live({
    balance: (summary) => {
      applyBalance(summary.balance);
      renderChart(summary.daily);
      if (summary.balance.version !== lastVersion) {
        if (cursors.length === 1) loadPage(null, true);
        if ((monthInput.value || data.month) === data.month) loadMonth();
      }
      lastVersion = summary.balance.version;
    },
  });
})();
