// Money in on the Billing page: Add credits (presets or a custom amount, a checkout opened in a
// new window, the new balance shown live when the payment lands) and the auto-recharge control.
// Also the receipt's Print button and the page the gateway returns the browser to.
"use strict";
(() => {
  const printButton = document.querySelector("[data-print]");
  if (printButton) printButton.addEventListener("click", () => window.print());

  if (document.querySelector('[data-testid="checkout-done"]')) {
    // Opened by the Billing page: that page shows the result; this window may go.
    if (window.opener && !window.opener.closed) setTimeout(() => window.close(), 1500);
    return;
  }

  const box = document.querySelector('[data-testid="add-credits"]');
  if (!box || typeof Dash === "undefined") return;
  const { api } = Dash;
  const $ = (id) => document.getElementById(id);
  const payBtn = $("credit-pay"), custom = $("credit-custom"), save = $("credit-save");
  const chosenLabel = $("credit-chosen"), errorBox = $("credit-error");
  const waiting = $("credit-waiting"), done = $("credit-done");
  let bounds = { min_paisa: 10000, max_paisa: 50000000 };
  let chosen = null;
  let polling = null;

  // Rupees as typed ("1500", "1,500.50") to integer paisa, or null; never through a float sum.
  function toPaisa(text) {
    const match = String(text).replace(/,/g, "").trim().match(/^(\d{1,9})(?:\.(\d{1,2}))?$/);
    if (!match) return null;
    return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
  }

  function showError(message) { errorBox.textContent = message; errorBox.hidden = !message; }

  function choose(paisa) {
    chosen = paisa;
    box.querySelectorAll(".preset").forEach((b) => b.classList.toggle("selected", Number(b.dataset.amount) === paisa));
    const ok = paisa !== null && paisa >= bounds.min_paisa && paisa <= bounds.max_paisa;
    payBtn.disabled = !ok;
    chosenLabel.textContent = paisa === null ? "" : formatINR(paisa);
    showError(paisa !== null && !ok
      ? `Choose an amount from ${formatINR(bounds.min_paisa)} to ${formatINR(bounds.max_paisa)}.` : "");
  }

  box.querySelectorAll(".preset").forEach((button) => button.addEventListener("click", () => {
    custom.value = "";
    choose(Number(button.dataset.amount));
  }));
  custom.addEventListener("input", () => choose(custom.value.trim() ? toPaisa(custom.value) : null));

  // Open the gateway's page in a new window: GET the stand-in's page, or POST Razorpay's form.
  function openCheckout(launch, popup) {
    if (launch.method === "GET") { popup.location.href = launch.url; return; }
    const form = document.createElement("form");
    form.method = "POST"; form.action = launch.url; form.target = popup.name;
    for (const [name, value] of Object.entries(launch.fields)) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value; form.append(input);
    }
    document.body.append(form); form.submit(); form.remove();
  }

  async function watch(checkoutId) {
    clearInterval(polling);
    polling = setInterval(async () => {
      let checkout;
      try { checkout = await api(`/dashboard/api/checkouts/${encodeURIComponent(checkoutId)}`); }
      catch (e) { return; }
      if (checkout.status === "created") return;
      clearInterval(polling);
      waiting.hidden = true;
      if (checkout.status === "paid") {
        $("credit-done-text").textContent = `${formatINR(checkout.amount_paisa)} added.`;
        $("credit-receipt").href = checkout.receipt_url;
        done.hidden = false;
        // The live stream (common.js) is already updating every balance field; refresh the rest.
        loadSettings().catch(() => {});
      } else {
        showError(checkout.status === "failed"
          ? `The payment failed${checkout.failure_reason ? ": " + checkout.failure_reason : ""}. Nothing was added; try again.`
          : "The checkout expired before it was paid. Nothing was added.");
      }
      payBtn.disabled = false;
    }, 1000);
  }

  payBtn.addEventListener("click", async () => {
    if (chosen === null) return;
    showError(""); done.hidden = true;
    payBtn.disabled = true;
    const popup = window.open("about:blank", "osmtalk-checkout", "width=480,height=720");
    try {
      const created = await api("/dashboard/api/checkouts", {
        body: { amount_paisa: chosen, save_method: save.checked },
      });
      if (popup) openCheckout(created.launch, popup);
      else window.location.assign(created.launch.url);
      waiting.hidden = false;
      watch(created.checkout_id);
    } catch (error) {
      if (popup) popup.close();
      showError(error.message);
      payBtn.disabled = false;
    }
  });

  // --- auto-recharge --------------------------------------------------------------------------
  const form = $("auto-recharge-form"), enabled = $("auto-recharge-enabled");
  const threshold = $("auto-recharge-threshold"), amount = $("auto-recharge-amount");
  const arError = $("auto-recharge-error"), arOk = $("auto-recharge-ok");
  const rupees = (paisa) => (paisa === null || paisa === undefined ? "" : (paisa / 100).toFixed(2));

  function showAutoRecharge(state) {
    enabled.checked = state.enabled;
    threshold.value = rupees(state.threshold_paisa);
    amount.value = rupees(state.amount_paisa);
    const hint = state.has_saved_method ? "" : " Buy credits once with “Save this card” to turn it on.";
    const failures = state.consecutive_failures ? ` Failed charges in a row: ${state.consecutive_failures}.` : "";
    arOk.textContent = (state.enabled ? "Auto-recharge is on." : "Auto-recharge is off.") + failures + hint;
    arOk.hidden = false;
  }

  async function loadSettings() {
    const settings = await api("/dashboard/api/payments");
    bounds = settings;
    custom.min = String(settings.min_paisa / 100);
    custom.max = String(settings.max_paisa / 100);
    showAutoRecharge(settings.auto_recharge);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    arError.hidden = true;
    const body = { enabled: enabled.checked, threshold_paisa: toPaisa(threshold.value), amount_paisa: toPaisa(amount.value) };
    try {
      showAutoRecharge(await api("/dashboard/api/auto-recharge", { body }));
    } catch (error) {
      arError.textContent = error.message; arError.hidden = false;
    }
  });

  loadSettings().catch((error) => showError(error.message));
})();
