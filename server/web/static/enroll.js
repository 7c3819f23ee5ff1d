// Face enrollment: the consent on record, photos uploaded under a consent, and for each photo
// whether a face was found and stored or why it was refused.
"use strict";
(() => {
  const { t, api, el, toast } = CG;
  const studentId = document.getElementById("enroll").dataset.studentId;
  const url = `/api/v1/students/${studentId}/faces`;
  const statusText = document.getElementById("enroll-status");
  const withdraw = document.getElementById("enroll-withdraw");
  const form = document.getElementById("enroll-form");
  const error = document.getElementById("enroll-error");
  const result = document.getElementById("enroll-result");

  async function load() {
    const found = await api("GET", url);
    const templates = found.packs.map((p) => `${p.model_pack}: ${p.templates} ${t("enroll.templates")}`).join(", ");
    statusText.textContent = found.consent
      ? `${t("enroll.consent")}: ${found.consent.given_by_name}. ${templates}`
      : t("enroll.no_consent");
    withdraw.hidden = !found.consent;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const photos = [...form.photos.files];
    if (!photos.length) {
      error.textContent = `${t("enroll.photos")}: ${t("common.error")}`;
      return;
    }
    const data = new FormData(form);
    const problems = {};
    try {
      const done = await api("POST", url, data);
      toast(`${t("enroll.done")}: ${done.templates}`);
    } catch (exc) {
      // A problem of one photo goes beside it; one of the whole request (no consent, a bad
      // field) says why next to the refusal itself.
      const general = [];
      for (const p of exc.body?.detail?.problems || []) {
        const text = `${p.vi} / ${p.en}${p.other_student ? ` (${p.other_student})` : ""}`;
        if (p.photo) (problems[p.photo] ||= []).push(text);
        else general.push(text);
      }
      error.textContent = general.length ? `${exc.message}: ${general.join("; ")}` : exc.message;
    }
    result.replaceChildren(...photos.map((file, i) => {
      const refused = problems[i + 1];
      return el("li", { class: "card" },
        el("img", { src: URL.createObjectURL(file), alt: `${t("enroll.photos")} ${i + 1}`, width: 160 }),
        el("p", { class: refused ? "error" : null }, refused ? `${t("enroll.refused")}: ${refused.join("; ")}` : error.textContent ? "" : t("enroll.done")));
    }));
    load();
  });

  withdraw.addEventListener("click", async () => {
    try {
      await api("DELETE", url);
      await load();
    } catch (exc) {
      toast(exc.message, true);
    }
  });
  load().catch((exc) => toast(exc.message, true));
})();
