// What the console (/) and the customer portal (/portal) share: calls to
// the REST API with a bearer token, and elements built with textContent,
// never as HTML. Each page defines `run(action)`, which the buttons call.
"use strict";

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// `method path` with `token`; the JSON answer, null for 204. A 401 calls
// `refused` (the page forgets the token), then throws as any error does.
async function request(token, method, path, body, refused) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) refused();
    throw new ApiError(response.status, (data && data.detail) || response.statusText);
  }
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function button(label, ariaLabel, onClick, secondary) {
  const b = el("button", label, secondary ? "secondary" : "");
  b.type = "button";
  b.setAttribute("aria-label", ariaLabel);
  b.addEventListener("click", (event) => {
    event.stopPropagation();
    run(onClick);
  });
  return b;
}
