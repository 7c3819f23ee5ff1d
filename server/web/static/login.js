"use strict";
(() => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await CG.api("POST", "/api/v1/auth/login", {
        username: form.username.value,
        password: form.password.value,
      }, { signIn: true });
      const next = form.dataset.next;
      location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
    } catch (exc) {
      error.textContent = `${CG.t("login.failed")}: ${exc.message}`;
      form.password.focus();
    }
  });
})();
