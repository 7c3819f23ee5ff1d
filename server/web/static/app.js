// Shared by every page: the catalogue, calls to the JSON API with the CSRF header, small DOM
// helpers, times as the school's clock shows them, and sign-out.
"use strict";
window.CG = (() => {
  const catalogue = JSON.parse(document.getElementById("cg-catalogue").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const t = (key) => catalogue[key] ?? key;

  // The API's error detail: a string, a pydantic list, or an enrollment refusal.
  function errorText(body, status) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    if (detail && detail.vi) return `${detail.vi} / ${detail.en}`;
    return `${t("common.error")} ${status}`;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(errorText(body, status));
      this.status = status;
      this.body = body;
    }
  }

  // A 401 means the session ended: go and sign in again (except when signing in itself).
  async function api(method, url, body, { signIn = false } = {}) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401 && !signIn) {
      location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
      throw new ApiError(401, null);
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // el("td", {class: "x"}, "text", child…): text is always text, never HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // The API sends times with the school's offset: show that clock, not the browser's.
  const clock = (iso) => (iso ? iso.slice(11, 16) : "");
  const day = (iso) => (iso ? `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}` : "");

  // A UTC time from the API on the school's clock (the page's data-zone).
  const zone = document.getElementById("main").dataset.zone || undefined;
  const stamp = new Intl.DateTimeFormat(document.documentElement.lang === "en" ? "en-GB" : "vi-VN", {
    timeZone: zone, dateStyle: "short", timeStyle: "medium",
  });
  const zoned = (iso) => (iso ? stamp.format(new Date(iso)) : "");

  function toast(message, isError) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.className = isError ? "toast show error" : "toast show";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (box.className = "toast"), 4000);
  }

  function statusBadge(status) {
    return el("span", { class: `badge s-${status}` }, t(`status.${status}`));
  }

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try {
        await api("POST", "/api/v1/auth/logout");
      } finally {
        location.href = "/login";
      }
    });
  }

  return { t, api, el, clock, day, zoned, toast, statusBadge, ApiError };
})();
