// Shared by the Billing and Calls pages: CSRF'd JSON calls, balance fields, the live stream,
// the collapsing sidebar on narrow screens.
"use strict";
const Dash = (() => {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const motionQuery = window.matchMedia("(prefers-reduced-motion: reduce)");

  async function api(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf;
    }
    const response = await fetch(path, {
      method: options.method || (options.body !== undefined ? "POST" : "GET"),
      headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      credentials: "same-origin",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.status === 401) { window.location.assign("/login"); }
    if (!response.ok) {
      const message = (data && (data.detail || data.title)) || ("HTTP " + response.status);
      const error = new Error(typeof message === "string" ? message : JSON.stringify(message));
      error.code = data && data.code;
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // Every element with data-field="<name>_paisa" shows that balance field; the banner follows
  // the authorization rule (available - reserved < minimum balance).
  function applyBalance(balance) {
    document.querySelectorAll("[data-field]").forEach((node) => {
      const value = balance[node.dataset.field];
      if (typeof value === "number" && node.textContent !== formatINR(value)) node.textContent = formatINR(value);
    });
    const banner = document.querySelector('[data-testid="low-balance-banner"]');
    if (banner) banner.hidden = !balance.low_balance;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // Show an API refusal (problem+json detail) in an error box; null hides it.
  function showError(box, error) {
    box.hidden = !error;
    box.textContent = error ? error.message : "";
  }

  // Server-sent events; EventSource reconnects by itself (the stream resends current state).
  function live(handlers, statusEl) {
    const source = new EventSource("/dashboard/events");
    const setState = (state, text) => {
      if (!statusEl) return;
      statusEl.dataset.state = state;
      statusEl.textContent = text;
    };
    source.onopen = () => setState("open", "live");
    source.onerror = () => setState("reconnecting", "reconnecting…");
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    }
    source.addEventListener("signed_out", () => { source.close(); window.location.assign("/login"); });
    window.addEventListener("beforeunload", () => source.close());
    return source;
  }

  function initialData() {
    const node = document.getElementById("initial-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  function reducedMotion() { return motionQuery.matches; }

  // A changed row blinks once (not with prefers-reduced-motion: the CSS drops the animation).
  function flash(node) {
    if (reducedMotion()) return;
    node.classList.remove("flash");
    void node.offsetWidth;
    node.classList.add("flash");
  }

  // Narrow screens: the sidebar slides in over the page from the menu button.
  (() => {
    const toggle = document.querySelector(".menu-toggle");
    const sidebar = document.getElementById("sidebar");
    const scrim = document.querySelector(".scrim");
    if (!toggle || !sidebar || !scrim) return;
    const setOpen = (open) => {
      document.body.classList.toggle("nav-open", open);
      toggle.setAttribute("aria-expanded", String(open));
      scrim.hidden = !open;
      if (open) sidebar.querySelector("a").focus();
    };
    toggle.addEventListener("click", () => setOpen(!document.body.classList.contains("nav-open")));
    scrim.addEventListener("click", () => setOpen(false));
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && document.body.classList.contains("nav-open")) { setOpen(false); toggle.focus(); } });
  })();

  return { api, applyBalance, el, live, initialData, csrf, showError, reducedMotion, flash };
})();
window.Dash = Dash;
