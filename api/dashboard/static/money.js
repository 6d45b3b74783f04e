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
window.formatINR = formatINR;
