// The live roll: a snapshot, then updates of changed students over Server-Sent Events.
"use strict";
(() => {
  const { t, api, el, clock, toast, statusBadge } = CG;
  const section = document.getElementById("roll");
  const classId = section.dataset.classId;
  const body = document.getElementById("roll-body");
  const live = document.getElementById("live");
  const picker = document.getElementById("session");
  const dialog = document.getElementById("correct-dialog");
  const form = document.getElementById("correct-form");
  const formError = document.getElementById("correct-error");
  let roll = null;
  let editing = null;
  let sessionPicked = false;

  const session = () => roll.sessions.find((s) => String(s.id) === picker.value) || roll.sessions[0];

  // Open on the session under way (or the next one) by the school's clock.
  function currentSession() {
    const now = roll.as_of.slice(11, 16);
    const running = roll.sessions.find((s) => s.start.slice(0, 5) <= now && now <= s.end.slice(0, 5));
    const next = roll.sessions.find((s) => now < s.start.slice(0, 5));
    return running || next || roll.sessions[roll.sessions.length - 1];
  }

  function where(time, gate) {
    if (!time) return "";
    return gate ? `${clock(time)} · ${gate}` : clock(time);
  }

  function row(student) {
    const current = session();
    const mark = student.marks.find((m) => m.session_id === current.id) || { status: "not_yet" };
    const manual = mark.source === "manual" ? el("small", { class: "muted" }, ` (${t("roll.manual")})`) : null;
    return el(
      "tr",
      { id: `student-${student.student_id}`, "data-status": mark.status },
      el("td", { "data-label": t("roll.student") },
        el("a", { href: `/students/${student.student_id}` }, student.full_name),
        el("small", { class: "muted block" }, student.code)),
      el("td", { "data-label": t("roll.status") }, statusBadge(mark.status), manual,
        mark.note ? el("small", { class: "muted block" }, mark.note) : null),
      el("td", { "data-label": t("roll.in"), class: "in" }, where(mark.first_in, mark.gate_in_name)),
      el("td", { "data-label": t("roll.out"), class: "out" }, where(mark.last_out, mark.gate_out_name)),
      el("td", {},
        el("button", {
          type: "button", class: "secondary small",
          "aria-label": `${t("roll.correct")}: ${student.full_name}`,
          onclick: () => openCorrection(student, mark),
        }, t("common.edit")))
    );
  }

  function renderCounts() {
    const totals = roll.totals[session().code] || {};
    for (const node of document.querySelectorAll("#counts .n")) {
      node.textContent = totals[node.dataset.status] ?? 0;
    }
  }

  function renderAll() {
    body.replaceChildren(...roll.students.map(row));
    renderCounts();
    document.getElementById("not-school-day").hidden = roll.school_day;
  }

  function applySnapshot(data) {
    roll = data;
    if (!sessionPicked && roll.sessions.length) picker.value = String(currentSession().id);
    document.getElementById("roll-date").textContent = CG.day(roll.date);
    renderAll();
  }

  function applyUpdate(data) {
    roll.as_of = data.as_of;
    roll.totals = data.totals;
    const removed = new Set(data.removed);
    roll.students = roll.students.filter((s) => !removed.has(s.student_id));
    for (const id of removed) document.getElementById(`student-${id}`)?.remove();
    for (const changed of data.students) {
      const index = roll.students.findIndex((s) => s.student_id === changed.student_id);
      const fresh = row(changed);
      fresh.classList.add("flash");
      if (index >= 0) {
        roll.students[index] = changed;
        document.getElementById(`student-${changed.student_id}`).replaceWith(fresh);
      } else {
        roll.students.push(changed);
        roll.students.sort((a, b) => a.code.localeCompare(b.code));
        renderAll();
      }
    }
    renderCounts();
  }

  function openCorrection(student, mark) {
    editing = { student, session: session() };
    document.getElementById("correct-who").textContent =
      `${student.full_name} · ${editing.session.name} · ${CG.day(roll.date)}`;
    form.status.value = mark.status === "not_yet" ? "present" : mark.status;
    form.note.value = "";
    formError.textContent = "";
    dialog.showModal();
    form.status.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const note = form.note.value.trim();
    if (!note) {
      formError.textContent = t("roll.reason_required");
      form.note.focus();
      return;
    }
    const { student, session: target } = editing;
    try {
      await api("PUT", `/api/v1/students/${student.student_id}/attendance/${roll.date}/${target.id}`,
        { status: form.status.value, note });
      dialog.close();
      toast(`${t("common.saved")}: ${student.full_name}`);
    } catch (exc) {
      formError.textContent = exc.message;
    }
  });
  document.getElementById("correct-cancel").addEventListener("click", () => dialog.close());

  picker.addEventListener("change", () => {
    sessionPicked = true;
    renderAll();
  });

  const stream = new EventSource(`/web/api/classes/${classId}/roll/stream`);
  stream.addEventListener("snapshot", (event) => applySnapshot(JSON.parse(event.data)));
  stream.addEventListener("update", (event) => applyUpdate(JSON.parse(event.data)));
  stream.addEventListener("open", () => {
    live.textContent = t("roll.live");
    live.className = "live on";
  });
  stream.addEventListener("error", () => {
    live.textContent = t("roll.offline");
    live.className = "live off";
  });
})();
