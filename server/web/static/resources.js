// An admin's record page: for each resource, its rows (from the API) and a form built from the
// API's own JSON Schema, so the fields and their rules are the API's.
"use strict";
(() => {
  const { t, api, el, toast } = CG;
  const specs = JSON.parse(document.getElementById("resources").textContent);
  const root = document.getElementById("resource-sections");
  const PAGE = 200;

  // A property's own schema, without the "or null" of optional fields.
  function base(prop, defs) {
    let schema = prop;
    if (prop.anyOf) schema = prop.anyOf.find((s) => s.type !== "null") || prop.anyOf[0];
    if (schema.$ref) schema = defs[schema.$ref.split("/").pop()];
    return schema;
  }

  function input(id, name, prop, schema, required) {
    const attrs = { id, name, required };
    if (schema.enum) {
      return el("select", attrs, required ? null : el("option", { value: "" }, "—"),
        schema.enum.map((v) => el("option", { value: v, selected: prop.default === v }, v)));
    }
    if (schema.type === "boolean") {
      return el("input", { ...attrs, type: "checkbox", checked: prop.default !== false, required: false });
    }
    if (schema.type === "integer") Object.assign(attrs, { type: "number", min: schema.minimum, max: schema.maximum, step: 1 });
    else if (schema.format === "date") attrs.type = "date";
    else if (schema.format === "time") Object.assign(attrs, { type: "time", step: 60 });
    else Object.assign(attrs, { maxlength: schema.maxLength, pattern: schema.pattern?.replace(/^\^|\$$/g, "") });
    if (typeof prop.default === "string" || typeof prop.default === "number") attrs.value = prop.default;
    return el("input", attrs);
  }

  function value(field, schema) {
    if (schema.type === "boolean") return field.checked;
    if (field.value === "") return null;
    if (schema.type === "integer") return Number(field.value);
    return field.value;
  }

  function section(spec, index) {
    const { properties, required = [], $defs = {} } = spec.schema;
    const tbody = el("tbody");
    const heading = el("h2", { id: `res-${index}` }, t(spec.title));
    const fields = Object.entries(properties).map(([name, prop]) => {
      const schema = base(prop, $defs);
      const id = `res-${index}-${name}`;
      const needed = required.includes(name);
      const control = input(id, name, prop, schema, needed);
      const label = el("label", { for: id, class: schema.type === "boolean" ? "check" : null },
        `${t(`field.${name}`)}${needed ? " *" : ""}`);
      return { name, schema, control, node: schema.type === "boolean" ? el("label", { class: "check" }, control, t(`field.${name}`)) : el("div", {}, label, control) };
    });
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "card", novalidate: true, "aria-labelledby": `res-${index}` },
      el("h3", {}, `${t("common.add")}: ${t(spec.title)}`), fields.map((f) => f.node), error,
      el("button", { type: "submit" }, t("common.add")));

    // Pages of PAGE rows: the first on load, the next ones on "more" (a school has more
    // students than one answer of the API holds).
    let shown = 0;
    const more = el("button", { type: "button", class: "secondary", hidden: true,
      onclick: () => load(true).catch((exc) => toast(exc.message, true)) }, t("common.more"));

    async function load(append = false) {
      const offset = append ? shown : 0;
      const rows = await api("GET", `${spec.endpoint}?limit=${PAGE}&offset=${offset}`);
      shown = offset + rows.length;
      more.hidden = rows.length < PAGE;
      const lines = rows.map((row) => el("tr", {},
        spec.columns.map((c) => el("td", { "data-label": t(`field.${c}`) }, row[c] === true ? t("common.yes") : row[c] === false ? t("common.no") : row[c] ?? "")),
        el("td", {}, spec.links.map(([href, key]) => [el("a", { href: href.replace("{id}", row.id) }, t(key)), " "]),
          el("button", { type: "button", class: "secondary small", "aria-label": `${t("common.delete")} ${row.id}`,
            onclick: async () => {
              try { await api("DELETE", `${spec.endpoint}/${row.id}`); await load(); }
              catch (exc) { toast(exc.message, true); }
            } }, t("common.delete")))));
      if (append) tbody.append(...lines);
      else tbody.replaceChildren(...lines);
      if (!shown) tbody.append(el("tr", {}, el("td", { colspan: spec.columns.length + 1, class: "muted" }, t("common.none"))));
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const body = {};
      for (const f of fields) {
        const v = value(f.control, f.schema);
        if (v !== null) body[f.name] = v;
      }
      try {
        await api("POST", spec.endpoint, body);
        toast(t("common.saved"));
        form.reset();
        await load();
      } catch (exc) {
        error.textContent = exc.message;
      }
    });

    const table = el("table", { class: "responsive" },
      el("thead", {}, el("tr", {}, spec.columns.map((c) => el("th", { scope: "col" }, t(`field.${c}`))), el("th", { scope: "col" }, t("common.actions")))),
      tbody);
    root.append(el("section", { "aria-labelledby": `res-${index}` }, heading, el("div", { class: "scroll" }, table), more, form));
    load().catch((exc) => toast(exc.message, true));
  }

  specs.forEach(section);
})();
