// A student's attendance over a date range (the API's default: the last 30 days).
"use strict";
(() => {
  const { t, api, el, clock, day, toast, statusBadge } = CG;
  const id = document.getElementById("history").dataset.studentId;
  const form = document.getElementById("history-range");
  const body = document.getElementById("history-body");

  async function load(query) {
    const [student, history] = await Promise.all([
      api("GET", `/api/v1/students/${id}`),
      api("GET", `/api/v1/students/${id}/history${query ? `?${query}` : ""}`),
    ]);
    document.getElementById("history-name").textContent = `${student.full_name} · ${student.code}`;
    form.from.value = history.starts_on;
    form.to.value = history.ends_on;
    const marks = [...history.marks].reverse();
    body.replaceChildren(...marks.map((m) => el("tr", {},
      el("td", { "data-label": t("common.date") }, day(m.date)),
      el("td", { "data-label": t("roll.session") }, m.session),
      el("td", { "data-label": t("roll.status") }, statusBadge(m.status)),
      el("td", { "data-label": t("roll.in") }, clock(m.first_in)),
      el("td", { "data-label": t("roll.out") }, clock(m.last_out)),
      el("td", { "data-label": t("roll.reason") }, m.note || ""))));
    if (!marks.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, t("common.none"))));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(new URLSearchParams(new FormData(form))).catch((exc) => toast(exc.message, true));
  });
  load("").catch((exc) => toast(exc.message, true));
})();
