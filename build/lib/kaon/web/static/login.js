// Sign in: ask kaon's identity service for a project-scoped token, then let
// the page's own route (/ui/session) keep it in an HttpOnly cookie.
"use strict";

function showError(text) {
  document.getElementById("login-error").textContent = text;
}

async function startSession(token) {
  const r = await fetch("/ui/session", {method: "POST", headers: {"x-auth-token": token}});
  if (!r.ok) {
    showError(r.status === 401 ? "The token was not accepted." : `Could not start a session (${r.status}).`);
    return;
  }
  window.location.assign("/ui/");
}

async function passwordLogin(form) {
  const f = new FormData(form);
  const domain = {name: f.get("domain")};
  const body = {auth: {
    identity: {methods: ["password"], password: {user: {name: f.get("username"), domain, password: f.get("password")}}},
    scope: {project: {name: f.get("project"), domain}},
  }};
  const r = await fetch("/identity/v3/auth/tokens", {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  if (r.status !== 201) {
    let message = `Sign-in failed (${r.status}).`;
    try { message = (await r.json()).error.message || message; } catch (e) { /* not JSON */ }
    showError(message);
    return;
  }
  await startSession(r.headers.get("x-subject-token"));
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  passwordLogin(ev.target).catch((e) => showError(String(e)));
});
document.getElementById("token-login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  startSession(new FormData(ev.target).get("token").trim()).catch((e) => showError(String(e)));
});
