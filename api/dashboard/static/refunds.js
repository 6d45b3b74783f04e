// The Billing page's Refunds section: the account's latest refunds and where each part went
// (a refund to a card payment, or a bank payout). Re-read every 5 s while the page is visible,
// every 2 s while a refund is pending.
"use strict";
(() => {
  const box = document.querySelector('[data-testid="refunds"]');
  if (!box || typeof Dash === "undefined") return;
  const { api, el } = Dash;
  const body = document.getElementById("refunds-body");
  const PART_KIND = { gateway: "To card payment", payout: "Bank transfer" };
  let timer = null;

  function partRow(part) {
    const where = part.kind === "gateway" ? `${PART_KIND.gateway} ${part.payment_id}` : PART_KIND.payout;
    return el("tr", { class: "refund-part", dataset: { testid: "refund-part", partNo: String(part.part_no), kind: part.kind, status: part.status } },
      el("td", {}, ""),
      el("td", {}, `Part ${part.part_no}: ${where}`, part.gateway_reference ? el("span", { class: "muted" }, ` · ${part.gateway_reference}`) : null),
      el("td", {}, el("span", { class: `pill refund-${part.status}`, dataset: { testid: "refund-part-status" } }, part.status)),
      el("td", { class: "num" }, formatINR(part.amount_paisa)));
  }

  function render(refunds) {
    box.hidden = refunds.length === 0;
    body.replaceChildren(...refunds.flatMap((refund) => [
      el("tr", { class: "refund", dataset: { testid: "refund", refundId: refund.id, status: refund.status } },
        el("td", {}, refund.created_label),
        el("td", {}, refund.id, refund.failure_reason ? el("div", { class: "muted" }, refund.failure_reason) : null),
        el("td", {}, el("span", { class: `pill refund-${refund.status}`, dataset: { testid: "refund-status" } }, refund.status)),
        el("td", { class: "num debit", dataset: { testid: "refund-amount" } }, formatINR(refund.amount_paisa))),
      ...refund.parts.map(partRow),
    ]));
    clearTimeout(timer);
    if (refunds.some((r) => r.status === "pending")) timer = setTimeout(load, 2000);
  }

  async function load() {
    try { render((await api("/dashboard/api/refunds")).refunds); } catch (e) { /* next change */ }
  }

  load();
  setInterval(() => { if (!document.hidden) load(); }, 5000);
})();
