// The customer portal: opened with a portal link (`/portal#wpl_…`), whose
// token it keeps in sessionStorage and sends as a bearer token to the same
// REST API as everyone else; the server answers it as a key bound to one
// application. Every value from the API is written with textContent, never
// as HTML. It reads the state every few seconds (no live feed: that is the
// operator's).
"use strict";

const TOKEN_KEY = "webhooks-emitter-portal";
const CLOSED_KEY = "webhooks-emitter-portal-closed";
const REFRESH_MS = 3000;
const PAGE = 20;

let token = null;
let base = "";
let endpoints = [];
let editing = null;
let openMessage = null;
let olderCursor = null;

function takeToken() {
  const fragment = decodeURIComponent(location.hash.slice(1));
  if (fragment.startsWith("wpl_")) {
    sessionStorage.setItem(TOKEN_KEY, fragment);
    sessionStorage.removeItem(CLOSED_KEY);
    // Out of the address bar, the history and any bookmark.
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function closePortal(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  // A reload says the same, not that there was never a link.
  sessionStorage.setItem(CLOSED_KEY, why);
  token = null;
  $("portal").hidden = true;
  $("closed").hidden = false;
  $("closed-why").textContent = why;
  $("expires").textContent = "";
}

async function api(method, path, body) {
  return request(token, method, path, body, () => closePortal("This link has expired, or is not valid."));
}

function say(text) {
  $("message").textContent = text || "";
}

async function run(action) {
  try {
    await action();
  } catch (error) {
    if (token) say(`Not done: ${error.message}`);
  }
}

function when(rfc3339) {
  return new Date(rfc3339).toLocaleString();
}

function urlOf(id) {
  const endpoint = endpoints.find((e) => e.id === id);
  return endpoint ? endpoint.url : id;
}

function newId() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return `ep-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function showSecret(key) {
  $("secret").hidden = false;
  $("secret-value").textContent = key;
}

async function rotate(id) {
  const rotated = await api("POST", `${base}/endpoints/${encodeURIComponent(id)}/secret/rotate`);
  showSecret(rotated.standard_webhooks_secret);
}

// Endpoints.

async function loadEndpoints() {
  endpoints = await api("GET", `${base}/endpoints`);
  const body = $("endpoints").querySelector("tbody");
  body.replaceChildren();
  $("no-endpoints").hidden = endpoints.length > 0;
  const select = $("recover-endpoint");
  const chosen = select.value;
  select.replaceChildren();
  for (const e of endpoints) {
    const stats = e.stats || {};
    const enabled = e.state === "active";
    const state = el("td", enabled ? "enabled" : "disabled", enabled ? "state-active" : "state-paused");
    const actions = el("td", null, "actions");
    actions.append(
      button("Edit", `Edit ${e.url}`, () => edit(e), true),
      button("Test", `Send a test event to ${e.url}`, () => test(e)),
      button(enabled ? "Disable" : "Enable", `${enabled ? "Disable" : "Enable"} ${e.url}`, () => toggle(e), true),
      button("Rotate secret", `Rotate the signing secret of ${e.url}`, async () => {
        await rotate(e.id);
        say("A new signing secret: the previous one keeps signing for a while.");
      }, true),
      button("Delete", `Delete ${e.url}`, () => remove(e), true),
    );
    const url = el("td", e.url, "url");
    body.append(row([url, e.events.join(", "), state, stats.delivered ?? 0, stats.last_status ?? "—", actions]));
    const option = el("option", e.url);
    option.value = e.id;
    select.append(option);
  }
  if (chosen) select.value = chosen;
}

async function test(e) {
  say(`Sending a test event to ${e.url}…`);
  const result = await api("POST", `${base}/endpoints/${encodeURIComponent(e.id)}/test`);
  say(result.ok
    ? `Test delivered: HTTP ${result.status} in ${result.latency_ms.toFixed(0)} ms.`
    : `Test failed: ${result.error}`);
}

async function toggle(e) {
  const action = e.state === "active" ? "pause" : "resume";
  await api("POST", `${base}/endpoints/${encodeURIComponent(e.id)}/${action}`);
  say(action === "pause" ? "Disabled: events wait until you enable it." : "Enabled.");
  await loadEndpoints();
}

async function remove(e) {
  if (!confirm(`Delete ${e.url}? Events waiting for it are dropped.`)) return;
  await api("DELETE", `${base}/endpoints/${encodeURIComponent(e.id)}`);
  say("Deleted.");
  await loadEndpoints();
}

function edit(e) {
  editing = e;
  $("form-title").textContent = "Edit an endpoint";
  $("save").textContent = "Save";
  $("cancel-edit").hidden = false;
  $("url").value = e.url;
  for (const box of $("types").querySelectorAll("input")) box.checked = e.events.includes(box.value);
  $("url").focus();
}

function stopEditing() {
  editing = null;
  $("form-title").textContent = "Add an endpoint";
  $("save").textContent = "Add endpoint";
  $("cancel-edit").hidden = true;
  $("endpoint-form").reset();
}

async function save(event) {
  event.preventDefault();
  const checked = Array.from($("types").querySelectorAll("input:checked"), (box) => box.value);
  const events = checked.length ? checked : ["*"];
  const url = $("url").value.trim();
  if (editing) {
    await api("PATCH", `${base}/endpoints/${encodeURIComponent(editing.id)}`, { url, events });
    say("Saved.");
  } else {
    const id = newId();
    await api("POST", `${base}/endpoints`, { id, url, events });
    await rotate(id);
    say("Endpoint added.");
  }
  stopEditing();
  await loadEndpoints();
}

async function loadTypes() {
  const types = await api("GET", "/event-types");
  const fieldset = $("types");
  for (const type of types) {
    const label = el("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = type.name;
    label.append(box, ` ${type.name}`);
    if (type.description) label.append(el("span", ` — ${type.description}`, "muted"));
    fieldset.append(label);
  }
  $("no-types").hidden = types.length > 0;
}

// Messages.

function messageRow(m) {
  const tr = row([when(m.accepted_at), m.event, m.request_id]);
  tr.tabIndex = 0;
  tr.setAttribute("aria-label", `Message ${m.event} at ${when(m.accepted_at)}`);
  const open = () => run(() => showMessage(m.request_id));
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (event) => event.key === "Enter" && open());
  return tr;
}

async function loadMessages() {
  const page = await api("GET", `${base}/messages?limit=${PAGE}`);
  const body = $("messages").querySelector("tbody");
  body.replaceChildren(...page.data.map(messageRow));
  $("no-messages").hidden = page.data.length > 0;
  olderCursor = page.next_cursor || null;
  $("more-messages").hidden = !olderCursor;
}

async function olderMessages() {
  const page = await api("GET", `${base}/messages?limit=${PAGE}&cursor=${encodeURIComponent(olderCursor)}`);
  $("messages").querySelector("tbody").append(...page.data.map(messageRow));
  olderCursor = page.next_cursor || null;
  $("more-messages").hidden = !olderCursor;
}

async function showMessage(requestId) {
  const m = await api("GET", `${base}/messages/${encodeURIComponent(requestId)}`);
  openMessage = requestId;
  $("detail").hidden = false;
  $("detail-title").textContent = `Message ${m.event} · ${m.request_id}`;
  $("detail-payload").textContent = m.expired
    ? "(its payload has expired)"
    : JSON.stringify(m.payload, null, 2);
  const body = $("attempts").querySelector("tbody");
  body.replaceChildren(...m.attempts.map((a) => row([
    when(a.at),
    urlOf(a.endpoint),
    el("td", a.outcome, `outcome-${a.outcome}`),
    a.status ?? "—",
    el("td", a.response_body ?? a.error ?? "", "body"),
  ])));
  $("no-attempts").hidden = m.attempts.length > 0;
  const resend = $("resend");
  resend.replaceChildren();
  if (!m.expired) {
    for (const e of endpoints) {
      resend.append(button(`Send again to ${e.url}`, `Send this message again to ${e.url}`, async () => {
        await api("POST", `${base}/endpoints/${encodeURIComponent(e.id)}/messages/${encodeURIComponent(m.request_id)}/resend`);
        say(`Sent again to ${e.url}.`);
      }, true));
    }
  }
}

async function recover(event) {
  event.preventDefault();
  const id = $("recover-endpoint").value;
  const since = new Date($("recover-since").value).toISOString();
  const result = await api("POST", `${base}/endpoints/${encodeURIComponent(id)}/recover`, { since });
  say(`Sent again: ${result.recovered} message(s)` + (result.expired ? `; ${result.expired} expired, not sent.` : "."));
}

async function refresh() {
  if (!token) return;
  await loadEndpoints();
  if (!olderCursor || $("messages").querySelectorAll("tbody tr").length <= PAGE) await loadMessages();
  if (openMessage) await showMessage(openMessage);
}

async function start() {
  token = takeToken();
  if (!token) {
    closePortal(sessionStorage.getItem(CLOSED_KEY) || "This address holds no portal link.");
    return;
  }
  let app;
  try {
    const apps = await api("GET", "/apps");
    app = apps.data[0];
  } catch (error) {
    if (token) closePortal(`The portal cannot open: ${error.message}`);
    return;
  }
  base = `/apps/${encodeURIComponent(app.id)}`;
  document.title = `Webhooks · ${app.name}`;
  $("title").textContent = `Webhooks · ${app.name}`;
  const expires = Number(token.split(".").at(-2));
  if (expires) $("expires").textContent = `This link works until ${new Date(expires * 1000).toLocaleString()}`;
  $("portal").hidden = false;
  $("endpoint-form").addEventListener("submit", (event) => run(() => save(event)));
  $("cancel-edit").addEventListener("click", stopEditing);
  $("recover-form").addEventListener("submit", (event) => run(() => recover(event)));
  $("more-messages").addEventListener("click", () => run(olderMessages));
  await run(async () => {
    await loadTypes();
    await loadEndpoints();
    await loadMessages();
  });
  setInterval(() => run(refresh), REFRESH_MS);
}

start();
