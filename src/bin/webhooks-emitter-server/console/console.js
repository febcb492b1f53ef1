// The webhooks-emitter console: signs in with the admin token (kept in
// sessionStorage), calls the REST API, and follows the live feed over SSE.
// Every value from the API is written with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "webhooks-emitter-token";
const FEED_TOPIC = "console deliveries";
const FEED_KEPT = 200;

let token = sessionStorage.getItem(TOKEN_KEY);
let selected = null;
let source = null;
let refreshTimer = null;

async function api(method, path, body) {
  return request(token, method, path, body, () => signOut("The token was refused."));
}

function ms(value) {
  return value === null || value === undefined ? "—" : `${value.toFixed(1)} ms`;
}

function clock(rfc3339) {
  return new Date(rfc3339).toLocaleTimeString();
}

function say(text) {
  $("message").textContent = text || "";
}

async function run(action) {
  try {
    say("");
    await action();
  } catch (error) {
    say(error.message);
  }
}

// --- Endpoints table ---

async function refreshEndpoints() {
  const endpoints = await api("GET", "/endpoints");
  const body = $("endpoints").querySelector("tbody");
  body.replaceChildren();
  for (const e of endpoints) {
    const s = e.stats || {};
    // An open circuit: one request at a time until one succeeds.
    const circuit = s.circuit_open ? " · circuit open" : "";
    const limit = e.rate_limit ? ` · ≤ ${e.rate_limit.per_second}/s` : "";
    const state = el("td", e.state + circuit + limit, s.circuit_open ? "state-circuit-open" : `state-${e.state}`);
    const actions = el("td", null, "actions");
    actions.append(
      e.state === "paused"
        ? button("Resume", `Resume ${e.id}`, () => control(e.id, "resume"))
        : button("Pause", `Pause ${e.id}`, () => control(e.id, "pause"), true),
      button("Test", `Send a test event to ${e.id}`, () => sendTest(e.id), true),
      button("Details", `Show attempts and dead letters of ${e.id}`, () => select(e.id), true),
    );
    const tr = row([
      e.id,
      el("td", e.url, "url"),
      e.events.join(", "),
      state,
      (s.queued ?? 0) + (s.in_flight ?? 0) + (s.retrying ?? 0),
      s.delivered ?? "—",
      s.dead_letters ?? "—",
      s.last_status ?? "—",
      ms(s.last_latency_ms),
      actions,
    ]);
    tr.dataset.id = e.id;
    if (e.id === selected) tr.classList.add("selected");
    body.append(tr);
  }
  $("no-endpoints").hidden = endpoints.length > 0;
}

async function control(id, action) {
  await api("POST", `/endpoints/${encodeURIComponent(id)}/${action}`);
  await refreshEndpoints();
}

async function sendTest(id) {
  const result = await api("POST", `/endpoints/${encodeURIComponent(id)}/test`);
  say(result.ok
    ? `Test to ${id}: HTTP ${result.status} in ${ms(result.latency_ms)}`
    : `Test to ${id} failed: ${result.error}`);
}

// --- One endpoint: attempts and dead letters ---

async function select(id) {
  selected = id;
  $("detail").hidden = false;
  $("detail-title").textContent = `Endpoint ${id}`;
  await Promise.all([refreshEndpoints(), refreshDetail()]);
}

async function refreshDetail() {
  if (!selected) return;
  const id = encodeURIComponent(selected);
  const [attempts, letters] = await Promise.all([
    api("GET", `/endpoints/${id}/attempts?limit=50`),
    api("GET", `/endpoints/${id}/dead-letters`),
  ]);
  const attemptRows = $("attempts").querySelector("tbody");
  attemptRows.replaceChildren(...attempts.map((a) => row([
    clock(a.at),
    a.event,
    a.attempt || "—",
    el("td", a.outcome.replace("_", " "), `outcome-${a.outcome}`),
    (a.outcome === "dead_lettered" ? a.error : a.status ?? a.error) ?? "—",
    ms(a.latency_ms),
  ])));
  const letterRows = $("dead-letters").querySelector("tbody");
  letterRows.replaceChildren(...letters.map((l) => {
    const action = el("td", null, "actions");
    action.append(button("Redeliver", `Redeliver dead letter ${l.id}`, () => redeliver(l.id)));
    return row([l.id, l.event, l.request_id, l.attempts, l.reason, action]);
  }));
  $("no-dead-letters").hidden = letters.length > 0;
  $("redeliver-all").disabled = letters.length === 0;
}

async function redeliver(n) {
  await api("POST", `/endpoints/${encodeURIComponent(selected)}/dead-letters/${n}/redeliver`);
  await refreshDetail();
}

async function redeliverAll() {
  const result = await api("POST", `/endpoints/${encodeURIComponent(selected)}/dead-letters/redeliver-all`);
  say(`${result.redelivered} dead letter(s) sent back to the queue`);
  await refreshDetail();
}

// --- Create ---

async function create(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const spec = {
    id: data.get("id").trim(),
    url: data.get("url").trim(),
    events: data.get("events").split(",").map((e) => e.trim()).filter(Boolean),
  };
  if (data.get("secret")) spec.secret = data.get("secret");
  if (data.get("max_retries")) spec.max_retries = Number(data.get("max_retries"));
  try {
    const created = await api("POST", "/endpoints", spec);
    $("create-result").textContent = `Created ${created.id}.`;
    $("create-result").className = "";
    form.reset();
    await refreshEndpoints();
  } catch (error) {
    $("create-result").textContent = error.message;
    $("create-result").className = "error";
  }
}

// --- Live feed ---

function follow() {
  if (source) source.close();
  const url = `/sse/${encodeURIComponent(FEED_TOPIC)}?token=${encodeURIComponent(token)}`;
  source = new EventSource(url);
  source.onopen = () => {
    $("live").textContent = "live";
    $("live").classList.add("on");
    scheduleRefresh();
  };
  source.onerror = () => {
    $("live").textContent = "reconnecting…";
    $("live").classList.remove("on");
  };
  source.addEventListener("attempt", (message) => {
    const a = JSON.parse(message.data);
    const item = el("li");
    item.append(
      el("time", clock(a.at)),
      el("strong", a.endpoint),
      document.createTextNode(` ${a.event} #${a.attempt || "—"} `),
      el("span", a.outcome.replace("_", " "), `outcome-${a.outcome}`),
      document.createTextNode(a.status ? ` HTTP ${a.status}` : a.error ? ` ${a.error}` : ""),
    );
    item.dataset.outcome = a.outcome;
    item.dataset.endpoint = a.endpoint;
    const feed = $("feed");
    feed.prepend(item);
    while (feed.children.length > FEED_KEPT) feed.lastChild.remove();
    scheduleRefresh();
  });
}

// Many attempts in a burst: one refresh for all of them.
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    run(async () => {
      await refreshEndpoints();
      await refreshDetail();
    });
  }, 250);
}

// --- Sign in and out ---

async function signIn(candidate) {
  token = candidate;
  try {
    await api("GET", "/endpoints");
  } catch (error) {
    token = null;
    throw error;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  follow();
  await refreshEndpoints();
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  if (source) source.close();
  source = null;
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("live").textContent = "not connected";
  $("live").classList.remove("on");
  $("sign-in-error").textContent = why || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await signIn($("token").value);
      $("token").value = "";
    } catch (error) {
      $("sign-in-error").textContent = error.status === 401 ? "The token was refused." : error.message;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("create-form").addEventListener("submit", create);
  $("redeliver-all").addEventListener("click", () => run(redeliverAll));
  if (token) signIn(token).catch(() => signOut());
});
