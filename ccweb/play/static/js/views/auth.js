// Log in / sign up. Labels on every input, native validation hints that match the server's
// rules (SPEC §3 Auth), the server's error as a sentence (a lockout says when to retry).

export function mount(root, ctx) {
  const { el } = ctx;
  let mode = "login";

  const error = el("div", { class: "form-error", role: "alert", testid: "auth-error", hidden: true });
  const showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
  };

  const field = (id, label, attrs, hint) =>
    el(
      "div",
      { class: "field" },
      el("label", { for: id }, label),
      el("input", { id, name: id, ...attrs, "aria-describedby": hint ? `${id}-hint` : null }),
      hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null,
    );

  async function submit(ev, form, run) {
    ev.preventDefault();
    showError("");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      const res = await run();
      if (res.ok) {
        ctx.done();
        return;
      }
      showError(ctx.errorText(res.error));
      error.focus?.();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  const loginForm = el(
    "form",
    { class: "card", testid: "login-form", "aria-label": "Log in", novalidate: false },
    field("login-site-id", "User ID", { testid: "login-site-id", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" }),
    field("login-password", "Password", { testid: "login-password", type: "password", autocomplete: "current-password", required: true }),
    el("button", { type: "submit", class: "btn gold block", testid: "login-submit" }, "Log in"),
  );
  loginForm.addEventListener("submit", (ev) =>
    submit(ev, loginForm, () => ctx.login(loginForm.elements["login-site-id"].value.trim(), loginForm.elements["login-password"].value)),
  );

  const signupForm = el(
    "form",
    { class: "card", testid: "signup-form", "aria-label": "Sign up", hidden: true },
    field("signup-site-id", "User ID", { testid: "signup-site-id", autocomplete: "username", required: true, minlength: "3", maxlength: "32", pattern: "[A-Za-z0-9_]{3,32}", autocapitalize: "none", spellcheck: "false" }, "3–32 letters, digits or _; you log in with it."),
    field("signup-nickname", "Nickname", { testid: "signup-nickname", autocomplete: "nickname", required: true, minlength: "2", maxlength: "20" }, "2–20 characters, shown to other players."),
    field("signup-password", "Password", { testid: "signup-password", type: "password", autocomplete: "new-password", required: true, minlength: "8" }, "At least 8 characters."),
    field("signup-invite", "Invite code", { testid: "signup-invite", required: true, autocomplete: "off", inputmode: "text" }, "The code from the player who invited you."),
    el("button", { type: "submit", class: "btn gold block", testid: "signup-submit" }, "Create account"),
  );
  signupForm.addEventListener("submit", (ev) =>
    submit(ev, signupForm, () =>
      ctx.signup({
        site_id: signupForm.elements["signup-site-id"].value.trim(),
        nickname: signupForm.elements["signup-nickname"].value.trim(),
        password: signupForm.elements["signup-password"].value,
        invite_code: signupForm.elements["signup-invite"].value.trim(),
      }),
    ),
  );

  const loginTab = el("button", { type: "button", testid: "auth-mode-login", "aria-pressed": "true", onclick: () => setMode("login") }, "Log in");
  const signupTab = el("button", { type: "button", testid: "auth-mode-signup", "aria-pressed": "false", onclick: () => setMode("signup") }, "Sign up");

  function setMode(next) {
    mode = next;
    loginTab.setAttribute("aria-pressed", String(mode === "login"));
    signupTab.setAttribute("aria-pressed", String(mode === "signup"));
    loginForm.hidden = mode !== "login";
    signupForm.hidden = mode !== "signup";
    showError("");
    heading.textContent = mode === "login" ? "Welcome back" : "Join the club";
  }

  const heading = el("h1", { id: "auth-heading" }, "Welcome back");
  error.tabIndex = -1;
  root.append(
    el(
      "div",
      { class: "auth" },
      el("div", { class: "logo", "aria-hidden": "true" }, "♠ Casino-Club"),
      heading,
      el("p", { class: "muted" }, "Spin, collect and climb the levels with free gold."),
      el("div", { class: "segmented", role: "group", "aria-label": "Log in or sign up" }, loginTab, signupTab),
      error,
      loginForm,
      signupForm,
    ),
  );
  if (ctx.message) showError(ctx.message);
}
