// Billing page: live balances, daily spend chart, paged transaction history, coupon redeem.
"use strict";
(() => {
  const { api, applyBalance, el, live, initialData } = Dash;
  const data = initialData();
  const SVG = "http://www.w3.org/2000/svg";

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

  // --- transactions, paged newest first -------------------------------------------------------
  const txBody = document.getElementById("tx-body");
  const olderBtn = document.getElementById("tx-older");
  const newestBtn = document.getElementById("tx-newest");
  let cursors = [null]; // the `before` of each page shown; last = current page
  let nextBefore = data.transactions.next_before;

  function txRow(tx) {
    const credit = tx.amount_paisa > 0;
    return el("tr", { dataset: { txId: tx.id } },
      el("td", {}, tx.created_label),
      el("td", {}, el("span", { class: "pill kind-" + tx.kind }, tx.kind_label)),
      el("td", {}, tx.description, tx.receipt_url
        ? [" · ", el("a", { href: tx.receipt_url, target: "_blank", dataset: { testid: "tx-receipt" } }, "Receipt")] : null),
      el("td", { class: "num " + (credit ? "credit" : "debit") }, (credit ? "+" : "") + formatINR(tx.amount_paisa)),
      el("td", { class: "num" }, formatINR(tx.balance_after)));
  }

  function showPage(page) {
    txBody.textContent = "";
    if (!page.items.length) txBody.append(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "No transactions yet.")));
    page.items.forEach((tx) => txBody.append(txRow(tx)));
    nextBefore = page.next_before;
    olderBtn.hidden = !nextBefore;
    newestBtn.hidden = cursors.length <= 1;
  }

  async function loadPage(before) {
    const query = before ? `?before=${encodeURIComponent(before)}` : "";
    showPage(await api("/dashboard/api/transactions" + query));
  }

  olderBtn.addEventListener("click", async () => { cursors.push(nextBefore); await loadPage(nextBefore); });
  newestBtn.addEventListener("click", async () => { cursors = [null]; await loadPage(null); });

  function refreshAll(summary) {
    applyBalance(summary.balance);
    renderChart(summary.daily);
    if (cursors.length === 1) loadPage(null).catch(() => {});
  }

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
  function showError(message) { errorBox.textContent = message; errorBox.hidden = false; }

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
    if (!code) { showError("Enter a coupon code."); return; }
    checkBtn.disabled = true;
    try {
      const preview = await api("/dashboard/api/coupons/preview", { body: { code } });
      previewed = code;
      document.getElementById("coupon-bonus").textContent = formatINR(preview.bonus_paisa);
      previewBox.hidden = false; confirmBtn.hidden = false; checkBtn.hidden = true;
      confirmBtn.focus();
    } catch (error) {
      showError(error.message);
    } finally {
      checkBtn.disabled = false;
    }
  });

  confirmBtn.addEventListener("click", async () => {
    if (previewed === null) return;
    confirmBtn.disabled = true;
    try {
      const result = await api("/dashboard/api/coupons/redeem", { body: { code: previewed } });
      refreshAll(result);
      previewBox.hidden = true; confirmBtn.hidden = true;
      doneBox.textContent = `${formatINR(result.bonus_paisa)} added to your promo balance.`;
      doneBox.hidden = false;
      previewed = null;
    } catch (error) {
      showError(error.message);
    } finally {
      confirmBtn.disabled = false;
    }
  });

  renderChart(data.daily);
  let lastVersion = data.balance.version;
  live({
    balance: (summary) => {
      applyBalance(summary.balance);
      renderChart(summary.daily);
      if (summary.balance.version !== lastVersion && cursors.length === 1) loadPage(null).catch(() => {});
      lastVersion = summary.balance.version;
    },
  });
})();
