// The delivery log and the audit log: newest first, times on the school's clock.
"use strict";
(() => {
  const { t, api, el, zoned, toast } = CG;

  async function deliveries() {
    const body = document.getElementById("deliveries-body");
    const rows = await api("GET", "/api/v1/notifications?limit=200");
    body.replaceChildren(...rows.map((n) => el("tr", { id: `delivery-${n.id}` },
      el("td", { "data-label": t("field.created_at") }, zoned(n.created_at)),
      el("td", { "data-label": t("leave.student") }, n.student_name),
      el("td", { "data-label": t("nav.guardians") }, n.guardian_name),
      el("td", { "data-label": t("field.channel") }, t(`channel.${n.channel}`)),
      el("td", { "data-label": t("field.kind") }, t(`kind.${n.kind}`)),
      el("td", { "data-label": t("field.status"), "data-status": n.status }, t(`delivery.status.${n.status}`)),
      el("td", { "data-label": t("field.reason") }, n.last_error || n.reason))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("common.none"))));
  }

  async function audit(filters) {
    const body = document.getElementById("audit-body");
    const query = new URLSearchParams({ limit: "200" });
    for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
    const rows = await api("GET", `/api/v1/audit?${query}`);
    body.replaceChildren(...rows.map((a) => el("tr", {},
      el("td", { "data-label": t("audit.at") }, zoned(a.at)),
      el("td", { "data-label": t("audit.actor") }, a.actor_username || "—"),
      el("td", { "data-label": t("audit.action") }, a.action),
      el("td", { "data-label": t("audit.entity") }, `${a.entity} ${a.entity_id ?? ""}`),
      el("td", { "data-label": t("audit.detail") }, el("pre", {}, JSON.stringify(a.detail))))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("common.none"))));
  }

  if (document.getElementById("deliveries")) deliveries().catch((exc) => toast(exc.message, true));
  const filter = document.getElementById("audit-filter");
  if (filter) {
    const run = () => audit(Object.fromEntries(new FormData(filter))).catch((exc) => toast(exc.message, true));
    filter.addEventListener("submit", (event) => { event.preventDefault(); run(); });
    run();
  }
})();
