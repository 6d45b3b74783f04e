// Port of domain.money.format_inr: integer paisa -> "₹1,00,000.00" (Indian digit grouping).
// Integer math only: the paisa value is never divided into a float.
"use strict";
function formatINR(paisa) {
  if (typeof paisa !== "number" || !Number.isSafeInteger(paisa)) {
    throw new TypeError("paisa must be a safe integer, got " + paisa);
  }
  const sign = paisa < 0 ? "-" : "";
  const abs = Math.abs(paisa);
  const rest = abs % 100;
  const rupees = (abs - rest) / 100; // exact: abs - rest is a multiple of 100
  let digits = String(rupees);
  if (digits.length > 3) {
    let head = digits.slice(0, -3);
    const tail = digits.slice(-3);
    const groups = [];
    while (head.length > 2) {
      groups.unshift(head.slice(-2));
      head = head.slice(0, -2);
    }
    if (head) groups.unshift(head);
    digits = groups.concat([tail]).join(",");
  }
  return sign + "\u20B9" + digits + "." + String(rest).padStart(2, "0");
}

// "1,500.5" / "₹1500.50" / "1500" -> paisa as an integer (string math, no float); undefined if
// it is not a non-negative amount with at most two decimals.
function parseINR(text) {
  const clean = String(text).replace(/[₹,\s]/g, "");
  const match = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(clean);
  if (!match) return undefined;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

// paisa -> "1500.50" (for an input field: no ₹, no grouping).
function rupeesText(paisa) {
  const rest = paisa % 100;
  return String((paisa - rest) / 100) + "." + String(rest).padStart(2, "0");
}
window.formatINR = formatINR;
window.parseINR = parseINR;
window.rupeesText = rupeesText;
