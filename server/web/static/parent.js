// A parent's page: each child's day and month, this browser's push subscription, how to hear
// from the school, and leave requests.
"use strict";
(() => {
  const { t, api, el, clock, day, toast, statusBadge } = CG;
  const root = document.getElementById("parent");
  const { today, month } = root.dataset;

  // --- each child's arrivals and departures ---------------------------------------------------
  function childCard(child, history) {
    const todays = history.marks.filter((m) => m.date === today);
    const past = history.marks.filter((m) => m.date !== today).reverse();
    const leaves = history.leave_requests;
    return el("section", { class: "card", id: `child-${child.student_id}`, "aria-labelledby": `child-h-${child.student_id}` },
      el("h2", { id: `child-h-${child.student_id}` }, child.student_name,
        child.class_name ? el("small", { class: "muted" }, ` · ${t("roll.class")} ${child.class_name}`) : null),
      el("h3", {}, `${t("parent.today")} (${day(today)})`),
      todays.length
        ? el("ul", { class: "today" }, todays.map((m) => el("li", { "data-session": m.session, "data-status": m.status },
            statusBadge(m.status), " ",
            m.first_in ? `${t("parent.arrived")} ${clock(m.first_in)}` : "",
            m.last_out ? ` · ${t("parent.left")} ${clock(m.last_out)}` : "")))
        : el("p", { class: "muted today-empty" }, t("status.not_yet")),
      el("h3", {}, t("parent.month")),
      past.length
        ? el("table", { class: "responsive" },
            el("thead", {}, el("tr", {}, [t("common.date"), t("roll.session"), t("roll.status"), t("parent.arrived"), t("parent.left")].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, past.map((m) => el("tr", {},
              el("td", { "data-label": t("common.date") }, day(m.date)),
              el("td", { "data-label": t("roll.session") }, m.session),
              el("td", { "data-label": t("roll.status") }, statusBadge(m.status)),
              el("td", { "data-label": t("parent.arrived") }, clock(m.first_in)),
              el("td", { "data-label": t("parent.left") }, clock(m.last_out))))))
        : el("p", { class: "muted" }, t("common.none")),
      leaves.length
        ? [el("h3", {}, t("leave.title")), el("ul", {}, leaves.map((l) => el("li", {},
            `${day(l.starts_on)}–${day(l.ends_on)}: ${t(`leave.reason.${l.reason}`)} · ${t(`leave.status.${l.status}`)}`)))]
        : null);
  }

  async function loadChildren(children) {
    const box = document.getElementById("children");
    document.getElementById("no-children").hidden = children.length > 0;
    const cards = [];
    for (const child of children) {
      const history = await api("GET", `/api/v1/students/${child.student_id}/history?from=${month}&to=${today}`);
      cards.push(childCard(child, history));
    }
    box.replaceChildren(...cards);
    const select = document.getElementById("leave-student");
    select.replaceChildren(...children.map((c) => el("option", { value: c.student_id }, c.student_name)));
  }

  // --- preferences ------------------------------------------------------------------------------
  const check = (name, value, checked, text) => el("label", { class: "check" },
    el("input", { type: "checkbox", name, value, checked }), text);

  // The parent's channels in their order of preference, then the others the school offers; the
  // order on screen is the order saved, and "prefer" moves a channel up.
  function channelsField(child) {
    const chosen = child.channels.filter((c) => child.available_channels.includes(c));
    const order = [...chosen, ...child.available_channels.filter((c) => !chosen.includes(c))];
    return el("fieldset", {}, el("legend", {}, t("prefs.channels")), order.map((c) => {
      const row = el("div", { class: "row channel", "data-channel": c },
        check("channels", c, chosen.includes(c), t(`channel.${c}`)));
      row.append(el("button", {
        type: "button", class: "secondary small", "aria-label": `${t("prefs.move_up")}: ${t(`channel.${c}`)}`,
        onclick: () => {
          const above = row.previousElementSibling;
          if (above?.classList.contains("channel")) above.before(row);
        },
      }, "↑"));
      return row;
    }));
  }

  function prefsForm(child) {
    const id = (name) => `pref-${child.student_id}-${name}`;
    const quiet = child.quiet_hours || {};
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "prefs", "data-student": child.student_id, novalidate: true },
      el("h3", {}, child.student_name),
      channelsField(child),
      el("fieldset", {}, el("legend", {}, t("prefs.kinds")),
        child.allowed_kinds.map((k) => check("kinds", k, child.kinds.includes(k), t(`kind.${k}`)))),
      el("fieldset", {}, el("legend", {}, t("prefs.quiet")),
        el("div", { class: "row wrap" },
          el("span", {}, el("label", { for: id("qs") }, t("prefs.quiet_start")), el("input", { id: id("qs"), name: "quiet_start", type: "time", value: quiet.start ? quiet.start.slice(0, 5) : "" })),
          el("span", {}, el("label", { for: id("qe") }, t("prefs.quiet_end")), el("input", { id: id("qe"), name: "quiet_end", type: "time", value: quiet.end ? quiet.end.slice(0, 5) : "" })))),
      check("digest", "on", child.digest, t("prefs.digest")),
      error,
      el("button", { type: "submit" }, t("common.save")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const data = new FormData(form);
      const start = data.get("quiet_start");
      const end = data.get("quiet_end");
      // Half a window (or an unfinished time, which reads as empty) would be saved as none.
      if (Boolean(start) !== Boolean(end) || (start && start === end)) {
        error.textContent = t("prefs.quiet_invalid");
        form.quiet_start.focus();
        return;
      }
      try {
        await api("PUT", `/api/v1/me/notification-preferences/${child.student_id}`, {
          channels: data.getAll("channels"),
          kinds: data.getAll("kinds"),
          quiet_hours: start && end ? { start, end } : null,
          digest: data.get("digest") === "on",
          digest_at: child.digest_at,
          locale: document.documentElement.lang === "en" ? "en" : "vi",
        });
        toast(t("common.saved"));
      } catch (exc) {
        error.textContent = exc.message;
      }
    });
    return form;
  }

  // What the parent stopped from a message's link (per parent, not per child), each with a way
  // to take it back; the box goes when the last one is lifted.
  function optOutsBox(optedOut) {
    if (!optedOut.length) return null;
    const list = el("ul", {}, optedOut.map((o) => {
      const what = `${t(`channel.${o.channel}`)} — ${t(`kind.${o.kind}`)}`;
      const item = el("li", { "data-channel": o.channel, "data-kind": o.kind }, what, " ");
      item.append(el("button", {
        type: "button", class: "secondary small", "aria-label": `${t("prefs.opt_in")}: ${what}`,
        onclick: async () => {
          try {
            const path = [o.channel, o.kind].map(encodeURIComponent).join("/");
            await api("DELETE", `/api/v1/me/notification-opt-outs/${path}`);
            item.remove();
            if (!list.children.length) box.remove();
            toast(t("common.saved"));
          } catch (exc) {
            toast(exc.message, true);
          }
        },
      }, t("prefs.opt_in")));
      return item;
    }));
    const box = el("div", { id: "opted-out" },
      el("h3", {}, t("prefs.opted_out")), el("p", { class: "muted" }, t("prefs.opted_out_help")), list);
    return box;
  }

  // --- this browser's push subscription ---------------------------------------------------------
  const pushState = document.getElementById("push-state");
  const pushOn = document.getElementById("push-on");
  const pushOff = document.getElementById("push-off");
  const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  function bytes(base64url) {
    const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4));
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  }

  function showPush(subscribed) {
    pushState.textContent = subscribed ? t("push.on") : Notification.permission === "denied" ? t("push.denied") : t("push.off");
    pushState.dataset.subscribed = String(subscribed);
    pushOn.hidden = subscribed;
    pushOff.hidden = !subscribed;
  }

  async function registration() {
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    return reg;
  }

  pushOn.addEventListener("click", async () => {
    try {
      if ((await Notification.requestPermission()) !== "granted") return showPush(false);
      const reg = await registration();
      const { public_key } = await api("GET", "/api/v1/notify/vapid-public-key");
      const subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(public_key) });
      await api("POST", "/api/v1/me/push-subscriptions", subscription.toJSON());
      showPush(true);
    } catch (exc) {
      toast(exc.message, true);
    }
  });

  pushOff.addEventListener("click", async () => {
    try {
      const reg = await registration();
      const subscription = await reg.pushManager.getSubscription();
      if (subscription) {
        await api("DELETE", `/api/v1/me/push-subscriptions?endpoint=${encodeURIComponent(subscription.endpoint)}`);
        await subscription.unsubscribe();
      }
      showPush(false);
    } catch (exc) {
      toast(exc.message, true);
    }
  });

  async function loadPush() {
    if (!supported) {
      pushState.textContent = t("push.unsupported");
      return;
    }
    const reg = await navigator.serviceWorker.getRegistration("/");
    const subscription = reg ? await reg.pushManager.getSubscription() : null;
    showPush(Boolean(subscription));
  }

  // --- leave requests ---------------------------------------------------------------------------
  const leaveForm = document.getElementById("leave-form");
  leaveForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("leave-error");
    error.textContent = "";
    const data = new FormData(leaveForm);
    try {
      await api("POST", "/api/v1/leave-requests", {
        student_id: Number(data.get("student_id")),
        starts_on: data.get("starts_on"),
        ends_on: data.get("ends_on"),
        reason: data.get("reason"),
        note: data.get("note"),
      });
      toast(t("leave.sent"));
      leaveForm.note.value = "";
      await start();
    } catch (exc) {
      error.textContent = exc.message;
    }
  });

  async function start() {
    const { children } = await api("GET", "/api/v1/me/notification-preferences");
    const optedOut = children.length ? optOutsBox(children[0].opted_out) : null;
    document.getElementById("prefs").replaceChildren(...[optedOut, ...children.map(prefsForm)].filter(Boolean));
    await loadChildren(children);
  }

  start().catch((exc) => toast(exc.message, true));
  loadPush().catch((exc) => toast(exc.message, true));
})();
