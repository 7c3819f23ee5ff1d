// Gates: status, last seen, and what their telemetry says; refreshed every 10 s.
"use strict";
(() => {
  const { t, api, el, zoned, toast } = CG;
  const body = document.getElementById("devices-body");

  const telemetry = (device, key) => {
    const value = device.last_telemetry ? device.last_telemetry[key] : undefined;
    return value === undefined || value === null ? "–" : typeof value === "number" ? Math.round(value * 10) / 10 : value;
  };

  async function load() {
    const devices = await api("GET", "/api/v1/devices");
    body.replaceChildren(...devices.map((d) => el("tr", { "data-device": `${d.site}.${d.device_id}` },
      el("td", { "data-label": t("field.device_id") }, el("strong", {}, `${d.site}/${d.device_id}`), el("small", { class: "muted block" }, d.name)),
      el("td", { "data-label": t("field.status") }, el("span", { class: `dot s-${d.status === "online" ? "present" : d.status === "offline" ? "absent" : "not_yet"}` }), t(`devices.${d.status}`)),
      el("td", { "data-label": t("devices.last_seen") }, zoned(d.last_seen_at) || "–"),
      el("td", { "data-label": t("devices.fps") }, telemetry(d, "fps")),
      el("td", { "data-label": t("devices.outbox") }, telemetry(d, "outbox_depth")),
      el("td", { "data-label": t("devices.version") }, d.agent_version || "–"),
      el("td", { "data-label": t("devices.model_pack") }, d.model_pack || "–"),
      el("td", { "data-label": t("devices.gallery") }, d.gallery_version ?? "–"))));
    if (!devices.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" }, t("common.none"))));
  }
  const refresh = () => load().catch((exc) => toast(exc.message, true));
  refresh();
  setInterval(refresh, 10000);
})();
