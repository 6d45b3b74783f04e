// Filters of the history lists (the API's own query parameters): a month becomes from/to
// dates (Asia/Kolkata, inclusive), kept in the page's URL so a reload or a shared link shows
// the same list; the CSV download links carry the same filters.
"use strict";
const Filters = (() => {
  function monthRange(month) {
    if (!/^\d{4}-\d{2}$/.test(month || "")) return null;
    const [y, m] = month.split("-").map(Number);
    const last = new Date(Date.UTC(y, m, 0)).getUTCDate(); // day 0 of the next month
    return { from: `${month}-01`, to: `${month}-${String(last).padStart(2, "0")}` };
  }

  // {month, type, ...} from a filter form -> URLSearchParams for the API (empty fields left out).
  function params(form) {
    const out = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) {
      const text = String(value).trim();
      if (!text) continue;
      if (name === "month") {
        const range = monthRange(text);
        if (range) { out.set("from", range.from); out.set("to", range.to); }
        else out.set("from", text); // the API answers invalid_date
      } else out.set(name, text);
    }
    return out;
  }

  // The form's fields from the page URL (?month=2026-11&channel=phone...).
  function restore(form) {
    const url = new URLSearchParams(window.location.search);
    for (const field of form.elements) {
      if (field.name && url.has(field.name)) field.value = url.get(field.name);
    }
  }

  function remember(form, extra) {
    const url = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) if (String(value).trim()) url.set(name, String(value).trim());
    for (const [name, value] of Object.entries(extra || {})) if (value) url.set(name, value);
    const query = url.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
  }

  function active(form) {
    return Array.from(new FormData(form).values()).some((v) => String(v).trim());
  }

  // Re-run `apply` when a filter changes (typing in a search box settles for 300 ms first).
  function watch(form, apply) {
    let timer = null;
    form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
    form.addEventListener("change", () => { clearTimeout(timer); apply(); });
    form.addEventListener("input", (e) => {
      if (e.target.type !== "search") return;
      clearTimeout(timer);
      timer = setTimeout(apply, 300);
    });
  }

  return { monthRange, params, restore, remember, active, watch };
})();
window.Filters = Filters;
