// Leave requests of the teacher's classes, pending first: approve (the days become excused) or
// reject.
"use strict";
(() => {
  const { t, api, el, day, toast } = CG;
  const body = document.getElementById("leaves-body");

  async function decide(leave, action) {
    try {
      await api("POST", `/api/v1/leave-requests/${leave.id}/${action}`);
      toast(t("common.saved"));
      await load();
    } catch (exc) {
      toast(exc.message, true);
    }
  }

  async function load() {
    const [leaves, students] = await Promise.all([
      api("GET", "/api/v1/leave-requests"),
      api("GET", "/api/v1/students?limit=2000"),
    ]);
    const names = new Map(students.map((s) => [s.id, s.full_name]));
    leaves.sort((a, b) => (a.status === "pending" ? 0 : 1) - (b.status === "pending" ? 0 : 1));
    body.replaceChildren(...leaves.map((l) => el("tr", { id: `leave-${l.id}`, "data-status": l.status },
      el("td", { "data-label": t("leave.student") }, el("a", { href: `/students/${l.student_id}` }, names.get(l.student_id) || l.student_id)),
      el("td", { "data-label": t("leave.dates") }, `${day(l.starts_on)}–${day(l.ends_on)}`),
      el("td", { "data-label": t("leave.reason") }, t(`leave.reason.${l.reason}`), l.note ? el("small", { class: "muted block" }, l.note) : null),
      el("td", { "data-label": t("leave.status") }, t(`leave.status.${l.status}`)),
      el("td", {}, l.status === "pending"
        ? [el("button", { type: "button", class: "small", onclick: () => decide(l, "approve") }, t("leave.approve")), " ",
           el("button", { type: "button", class: "small secondary", onclick: () => decide(l, "reject") }, t("leave.reject"))]
        : null))));
    if (!leaves.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("common.none"))));
  }
  load().catch((exc) => toast(exc.message, true));
})();
