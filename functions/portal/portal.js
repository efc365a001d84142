// The key portal: one page over the public API, acting with a portal session's token.
// The token comes in the URL fragment (never sent to a server), is taken out of the address
// bar at once and lives in this module's memory only: no storage API, so a reload asks for a
// new session. Every value from the API reaches the page as text, never as markup. URLs are
// relative to the page, so an API mapped under a base path (a custom domain) serves it whole.

const fragment = new URLSearchParams(location.hash.slice(1));
let token = fragment.get("token");
history.replaceState(null, "", location.pathname + location.search);
// A new link opened in this tab only changes the fragment (no page load): start over with it.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).get("token")) location.reload();
});

const $ = (id) => document.getElementById(id);
const state = { tab: "secret", keys: [], keysCursor: null, permissions: [], roles: [], auditCursors: [null], auditPage: 0 };
// Every request counts against the minting key's minute limit and quota: sparklines are drawn
// for the first 20 keys of a tab, each fetched once per session (Refresh fetches them again),
// a few at a time.
const KEYS_PER_PAGE = 100;
const SPARKS_PER_TAB = 20;
const SPARK_AT_ONCE = 3;
const sparks = new Map();
let sparksRunning = 0;
const sparkQueue = [];

class Ended extends Error {}
class Refused extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code;
    this.details = error?.details;
  }
  readable() {
    const required = this.details?.required;
    const need = required ? ` (needs ${[].concat(required).join(", ")})` : "";
    return `${this.message}${need}${this.code ? ` [${this.code}]` : ""}`;
  }
}

async function api(method, path, body) {
  if (!token) throw new Ended();
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path.replace(/^\//, ""), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
  });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.status === 401) { end(); throw new Ended(); }
  if (!res.ok) throw new Refused(res.status, data?.error);
  return data;
}

function end() {
  token = null;
  $("app").hidden = true;
  $("loading").hidden = true;
  $("ended").hidden = false;
  $("who").textContent = "";
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

const when = (t) => (t ? new Date(t).toLocaleString() : "—");

function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch { return {}; }
}

function status(key) {
  if (key.revoked_at) return ["revoked", "Revoked"];
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return ["expired", "Expired"];
  if (key.expires_at) return ["expiring", "Active until " + when(key.expires_at)];
  return ["active", "Active"];
}

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

// ---- keys ----

let keysLoads = 0;

async function loadKeys(more = false) {
  // Two loads in flight (an edit's, then a roll's) may answer out of order: only the latest
  // one draws, so an older list never replaces a newer one.
  const mine = ++keysLoads;
  const q = more && state.keysCursor
    ? `?limit=${KEYS_PER_PAGE}&cursor=${encodeURIComponent(state.keysCursor)}`
    : `?limit=${KEYS_PER_PAGE}`;
  const page = await api("GET", `/api/v1/keys${q}`);
  if (mine !== keysLoads) return;
  state.keys = more ? state.keys.concat(page.keys) : page.keys;
  state.keysCursor = page.next_cursor || null;
  renderKeys();
}

function renderKeys() {
  const rows = $("key-rows");
  rows.replaceChildren();
  const shown = state.keys.filter((k) => k.type === state.tab);
  if (shown.length === 0) rows.append(el("tr", {}, el("td", { colspan: "8", text: "No keys of this type yet." })));
  for (const [i, key] of shown.entries()) {
    const [cls, text] = status(key);
    const live = cls === "active" || cls === "expiring";
    const scopes = el("td", {}, ...key.scopes.map((s) => el("span", { class: "chip", text: s })),
      ...(key.roles || []).map((r) => el("span", { class: "chip role", text: `role: ${r}` })));
    const spark = el("td", { class: "spark-cell" });
    const actions = el("td", { class: "row-actions" },
      el("button", { text: "Usage", "aria-label": `Usage of ${key.prefix}`, onclick: () => openUsage(key) }),
      live ? el("button", { text: "Edit", "aria-label": `Edit ${key.prefix}`, onclick: () => openEdit(key) }) : null,
      live ? el("button", { text: "Roll", "aria-label": `Roll ${key.prefix}`, onclick: () => openRoll(key) }) : null,
      key.revoked_at ? null : el("button", { text: "Revoke", "aria-label": `Revoke ${key.prefix}`, onclick: () => openRevoke(key) }));
    rows.append(el("tr", { "data-prefix": key.prefix },
      el("td", {}, el("code", { text: key.prefix }), el("span", { class: "label", text: key.label || "" })),
      el("td", { class: `status-${cls}`, text }),
      scopes,
      el("td", { text: when(key.last_used_at) }),
      el("td", { text: when(key.created_at) }),
      el("td", { text: when(key.expires_at) }),
      spark,
      actions));
    if (i < SPARKS_PER_TAB) sparkline(key.prefix, spark);
  }
  $("keys-more").hidden = !state.keysCursor;
}

// Only the listed keys', once each per session (a usage request counts as the key's own).
function sparkline(prefix, cell) {
  if (!sparks.has(prefix)) {
    sparks.set(prefix, new Promise((resolve) => {
      sparkQueue.push(() => api("GET", `/api/v1/keys/${encodeURIComponent(prefix)}/usage`)
        .then((usage) => usage.points, () => null)
        .then(resolve));
      pumpSparks();
    }));
  }
  sparks.get(prefix).then((points) => {
    if (points) cell.replaceChildren(bars(points, 96, 24, "spark", `${prefix}: requests per hour, last 24 hours`));
    else cell.textContent = "—";
  });
}

function pumpSparks() {
  while (sparksRunning < SPARK_AT_ONCE && sparkQueue.length) {
    sparksRunning += 1;
    sparkQueue.shift()().finally(() => { sparksRunning -= 1; pumpSparks(); });
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function bars(points, width, height, cls, label) {
  const root = svg("svg", { class: cls, width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  const title = svg("title", {});
  const total = points.reduce((n, p) => n + p.accepted + p.rate_limited + p.quota_exceeded, 0);
  title.textContent = `${label}: ${total} requests`;
  root.append(title);
  const max = Math.max(1, ...points.map((p) => p.accepted + p.rate_limited + p.quota_exceeded));
  // A baseline, so a quiet day reads as zero rather than as nothing loaded.
  root.append(svg("rect", { class: "base", x: 0, y: height - 1, width, height: 1 }));
  const w = width / Math.max(1, points.length);
  points.forEach((p, i) => {
    const ok = (p.accepted / max) * height;
    const refused = ((p.rate_limited + p.quota_exceeded) / max) * height;
    if (ok > 0) root.append(svg("rect", { x: i * w, y: height - ok, width: Math.max(1, w - 1), height: ok }));
    if (refused > 0) root.append(svg("rect", { class: "refused", x: i * w, y: height - ok - refused, width: Math.max(1, w - 1), height: refused }));
  });
  return root;
}

// ---- dialogs ----

function scopeBoxes(fieldset, keyType, checked) {
  const groups = [
    ["Widgets", ["widget_sessions:write", "embed_tokens:create"]],
    ["Gates and buddies", ["write:unlocks", "read:buddies", "read:operations"]],
    ["Key management", ["keys:read", "keys:write"]],
  ];
  const legend = fieldset.querySelector("legend");
  fieldset.replaceChildren(legend);
  const known = new Map(state.permissions.map((p) => [p.scope, p]));
  const placed = new Set();
  const box = (p) => el("label", { title: p.description },
    el("input", Object.assign({ type: "checkbox", name: "scope", value: p.scope }, checked.includes(p.scope) ? { checked: "" } : {})),
    ` ${p.scope}`);
  for (const [name, scopes] of groups) {
    const mine = scopes.map((s) => known.get(s)).filter((p) => p && p.key_types.includes(keyType));
    if (mine.length === 0) continue;
    fieldset.append(el("h3", { text: name }), ...mine.map(box));
    mine.forEach((p) => placed.add(p.scope));
  }
  const rest = state.permissions.filter((p) => !placed.has(p.scope) && p.key_types.includes(keyType));
  if (rest.length) fieldset.append(el("h3", { text: "Other" }), ...rest.map(box));
}

const checkedValues = (root, name) => [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

function openCreate() {
  const form = $("create-form");
  form.reset();
  $("create-error").textContent = "";
  const type = () => form.querySelector('input[name="type"]:checked').value;
  const draw = () => scopeBoxes($("create-scopes"), type(), []);
  form.querySelectorAll('input[name="type"]').forEach((r) => (r.onchange = draw));
  draw();
  const roles = $("create-roles");
  roles.replaceChildren(roles.querySelector("legend"), ...state.roles.map((r) =>
    el("label", { title: r.scopes.join(" ") }, el("input", { type: "checkbox", name: "role", value: r.name }), ` ${r.name}`)));
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = { type: type(), require_signed_user_id: form.signed.checked };
    if (form.label.value.trim()) body.label = form.label.value.trim();
    const scopes = checkedValues(form, "scope");
    const chosenRoles = checkedValues(form, "role");
    if (scopes.length) body.scopes = scopes;
    if (chosenRoles.length) body.roles = chosenRoles;
    const origins = lines(form.origins.value);
    if (origins.length) body.allowed_origins = origins;
    try {
      const made = await api("POST", "/api/v1/keys", body);
      $("create").close();
      showSecret(made);
      notice(`Created ${made.record.prefix}.`);
      await loadKeys();
    } catch (e) {
      if (e instanceof Refused) $("create-error").textContent = e.readable();
    }
  };
  $("create").showModal();
}

function showSecret(made) {
  $("secret-key").value = made.key;
  $("secret-hmac").hidden = !made.hmac_secret;
  $("secret-hmac-value").value = made.hmac_secret || "";
  $("secret").showModal();
  $("secret-key").select();
}

// Once shown, gone: nothing of a new key stays in the page after its dialog closes. The button
// clears it before closing (the dialog's close event is queued, not immediate); the close event
// covers Escape.
function forgetSecret() {
  $("secret-key").value = "";
  $("secret-hmac-value").value = "";
}

function copy(id) {
  const value = $(id).value;
  if (navigator.clipboard && value) navigator.clipboard.writeText(value).then(() => notice("Copied."), () => $(id).select());
  else $(id).select();
}

function openEdit(key) {
  const form = $("edit-form");
  $("edit-prefix").textContent = key.prefix;
  $("edit-error").textContent = "";
  form.label.value = key.label || "";
  form.origins.value = (key.allowed_origins || []).join("\n");
  scopeBoxes($("edit-scopes"), key.type, key.scopes);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {};
    const label = form.label.value.trim();
    if (label !== (key.label || "")) body.label = label || null;
    const scopes = checkedValues(form, "scope");
    if (scopes.join(" ") !== [...key.scopes].join(" ")) body.scopes = scopes;
    const origins = lines(form.origins.value);
    if (origins.join("\n") !== (key.allowed_origins || []).join("\n")) body.allowed_origins = origins;
    if (Object.keys(body).length === 0) { $("edit").close(); return; }
    try {
      await api("PATCH", `/api/v1/keys/${encodeURIComponent(key.prefix)}`, body);
      $("edit").close();
      notice(`Saved ${key.prefix}.`);
      await loadKeys();
    } catch (e) {
      if (e instanceof Refused) $("edit-error").textContent = e.readable();
    }
  };
  $("edit").showModal();
}

function openRoll(key) {
  const form = $("roll-form");
  $("roll-prefix").textContent = key.prefix;
  $("roll-error").textContent = "";
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      const made = await api("POST", `/api/v1/keys/${encodeURIComponent(key.prefix)}/roll`, { grace_seconds: Number(form.grace.value) });
      $("roll").close();
      showSecret(made);
      notice(`Rolled ${key.prefix} into ${made.record.prefix}.`);
      await loadKeys();
    } catch (e) {
      if (e instanceof Refused) $("roll-error").textContent = e.readable();
    }
  };
  $("roll").showModal();
}

function openRevoke(key) {
  const form = $("revoke-form");
  $("revoke-prefix").textContent = key.prefix;
  $("revoke-error").textContent = "";
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api("DELETE", `/api/v1/keys/${encodeURIComponent(key.prefix)}`);
      $("revoke").close();
      notice(`Revoked ${key.prefix}.`);
      await loadKeys();
    } catch (e) {
      if (e instanceof Refused) $("revoke-error").textContent = e.readable();
    }
  };
  $("revoke").showModal();
  form.querySelector(".cancel").focus();
}

async function openUsage(key) {
  $("usage-prefix").textContent = key.prefix;
  const select = $("usage-granularity");
  const draw = async () => {
    const day = select.value === "day";
    let q = "";
    if (day) {
      const to = new Date();
      to.setUTCHours(0, 0, 0, 0);
      to.setUTCDate(to.getUTCDate() + 1);
      const from = new Date(to.getTime() - 30 * 86400000);
      q = `?granularity=day&from=${from.toISOString().replace(".000", "")}&to=${to.toISOString().replace(".000", "")}`;
    }
    try {
      const usage = await api("GET", `/api/v1/keys/${encodeURIComponent(key.prefix)}/usage${q}`);
      $("usage-chart").replaceChildren(chart(usage.points, day));
      const sum = (f) => usage.points.reduce((n, p) => n + p[f], 0);
      $("usage-caption").textContent =
        `${sum("accepted")} accepted, ${sum("rate_limited")} rate limited, ${sum("quota_exceeded")} over quota (${day ? "per day, last 30 days" : "per hour, last 24 hours"}, UTC).`;
    } catch (e) {
      if (e instanceof Refused) $("usage-caption").textContent = e.readable();
    }
  };
  select.onchange = draw;
  $("usage").showModal();
  await draw();
}

function chart(points, day) {
  const width = 520, height = 180, left = 36, bottom = 20;
  const root = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Requests over time" });
  const max = Math.max(1, ...points.map((p) => p.accepted + p.rate_limited + p.quota_exceeded));
  const plotH = height - bottom - 4, plotW = width - left;
  for (const f of [0, 0.5, 1]) {
    const y = 4 + plotH * (1 - f);
    root.append(svg("line", { x1: left, x2: width, y1: y, y2: y }));
    const t = svg("text", { x: 0, y: y + 3 });
    t.textContent = String(Math.round(max * f));
    root.append(t);
  }
  const w = plotW / Math.max(1, points.length);
  points.forEach((p, i) => {
    const x = left + i * w;
    const ok = (p.accepted / max) * plotH;
    const refused = ((p.rate_limited + p.quota_exceeded) / max) * plotH;
    const bar = svg("rect", { class: "accepted", x, y: 4 + plotH - ok, width: Math.max(1, w - 2), height: ok });
    const tip = svg("title", {});
    tip.textContent = `${new Date(p.start).toLocaleString()}: ${p.accepted} accepted, ${p.rate_limited + p.quota_exceeded} refused`;
    bar.append(tip);
    root.append(bar);
    if (refused > 0) root.append(svg("rect", { class: "refused", x, y: 4 + plotH - ok - refused, width: Math.max(1, w - 2), height: refused }));
    if (i % (day ? 5 : 4) === 0) {
      const t = svg("text", { x, y: height - 5 });
      const d = new Date(p.start);
      t.textContent = day ? `${d.getUTCMonth() + 1}/${d.getUTCDate()}` : `${String(d.getUTCHours()).padStart(2, "0")}h`;
      root.append(t);
    }
  });
  return root;
}

// ---- audit trail ----

async function loadAudit() {
  const cursor = state.auditCursors[state.auditPage];
  const q = cursor ? `?limit=20&cursor=${encodeURIComponent(cursor)}` : "?limit=20";
  const page = await api("GET", `/api/v1/audit-events${q}`);
  state.auditCursors[state.auditPage + 1] = page.next_cursor || null;
  const rows = $("audit-rows");
  rows.replaceChildren(...page.events.map((e) => el("tr", {},
    el("td", { text: when(e.time) }),
    el("td", {}, el("code", { text: e.actor })),
    el("td", { text: e.action }),
    el("td", {}, el("code", { text: e.target })),
    el("td", { class: "changes", text: JSON.stringify(e.changes) }))));
  if (page.events.length === 0) rows.append(el("tr", {}, el("td", { colspan: "5", text: "No events." })));
  $("audit-next").disabled = !page.next_cursor;
  $("audit-first").disabled = state.auditPage === 0;
}

// ---- wiring ----

function selectTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('[role="tab"]')) b.setAttribute("aria-selected", String(b.dataset.type === tab));
  $("keys").hidden = tab === "audit";
  $("audit").hidden = tab !== "audit";
  notice("");
  if (tab === "audit") { state.auditPage = 0; loadAudit().catch(() => {}); } else renderKeys();
}

function wire() {
  for (const b of document.querySelectorAll('[role="tab"]')) b.addEventListener("click", () => selectTab(b.dataset.type));
  $("create-open").addEventListener("click", openCreate);
  // Fresh sparklines on demand (the usage dialog's numbers are always fetched anew).
  $("refresh").addEventListener("click", () => { sparks.clear(); notice(""); loadKeys().catch(() => {}); });
  $("keys-next").addEventListener("click", () => loadKeys(true).catch(() => {}));
  $("audit-next").addEventListener("click", () => { state.auditPage += 1; loadAudit().catch(() => {}); });
  $("audit-first").addEventListener("click", () => { state.auditPage = 0; loadAudit().catch(() => {}); });
  $("copy-key").addEventListener("click", () => copy("secret-key"));
  $("copy-hmac").addEventListener("click", () => copy("secret-hmac-value"));
  $("secret").addEventListener("close", forgetSecret);
  $("secret").querySelector(".close").addEventListener("click", forgetSecret);
  for (const b of document.querySelectorAll("dialog .cancel, dialog .close")) b.addEventListener("click", () => b.closest("dialog").close());
}

async function start() {
  wire();
  if (!token) { end(); return; }
  const c = claims(token);
  try {
    const [permissions, roles] = await Promise.all([
      fetch("api/v1/permissions", { cache: "no-store", credentials: "omit" }).then((r) => r.json()),
      api("GET", "/api/v1/roles"),
    ]);
    state.permissions = permissions.permissions || [];
    state.roles = roles.roles || [];
    await loadKeys();
  } catch (e) {
    if (!(e instanceof Ended)) { $("loading").textContent = e instanceof Refused ? e.readable() : "The API could not be reached."; }
    return;
  }
  $("who").textContent = `${c.cid || ""} · ${c.env || ""} · as ${c.act || ""} · until ${when(c.exp * 1000)}`;
  $("loading").hidden = true;
  $("app").hidden = false;
}

start();
