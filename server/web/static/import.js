// Roster import: preview every row with its errors; save only when all rows are valid.
"use strict";
(() => {
  const { t, api, el, toast } = CG;
  const form = document.getElementById("import-form");
  const commit = document.getElementById("import-commit");
  const summary = document.getElementById("import-summary");
  const error = document.getElementById("import-error");
  const table = document.getElementById("import-table");
  const body = document.getElementById("import-body");

  const upload = () => new FormData(form);

  function show(preview) {
    table.hidden = false;
    body.replaceChildren(...preview.rows.map((row) => {
      const v = row.values;
      const bad = row.errors.length > 0;
      return el("tr", { class: bad ? "bad" : null, "data-line": row.line, "data-ok": String(!bad) },
        el("td", { "data-label": t("import.row") }, row.line),
        el("td", { "data-label": t("field.code") }, v.code || ""),
        el("td", { "data-label": t("field.full_name") }, v.full_name || ""),
        el("td", { "data-label": t("roll.class") }, v.class || ""),
        el("td", { "data-label": t("nav.guardians") }, [v.guardian_name, v.guardian_phone].filter(Boolean).join(" · ")),
        el("td", { "data-label": t("import.errors"), class: bad ? "error" : null },
          bad ? el("ul", {}, row.errors.map((e) => el("li", {}, e))) : t("import.ok")));
    }));
    summary.textContent = preview.ok ? t("import.ready") : t("import.has_errors");
    summary.className = preview.ok ? "" : "error";
    commit.disabled = !preview.ok;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    commit.disabled = true;
    if (!form.file.files.length) {
      error.textContent = `${t("import.file")}: ${t("common.error")}`;
      form.file.focus();
      return;
    }
    try {
      show(await api("POST", "/web/api/roster/preview", upload()));
    } catch (exc) {
      table.hidden = true;
      summary.textContent = "";
      error.textContent = exc.message;
    }
  });

  form.file.addEventListener("change", () => {
    commit.disabled = true;
    summary.textContent = "";
  });

  commit.addEventListener("click", async () => {
    error.textContent = "";
    commit.disabled = true;
    try {
      const saved = await api("POST", "/web/api/roster/import", upload());
      summary.className = "";
      summary.textContent = `${t("import.saved")}: ${saved.students} ${t("nav.students").toLowerCase()}, ${saved.links} ${t("nav.guardians").toLowerCase()}`;
      toast(t("import.saved"));
    } catch (exc) {
      if (exc.body && exc.body.preview) show(exc.body.preview);
      error.textContent = exc.message;
    }
  });
})();
