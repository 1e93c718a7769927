// zookeeper dashboard: fills web/index.html from the API, without reloading.
//
// Design
// - One poll loop, chained with setTimeout (never setInterval, so a slow
//   answer can never stack requests): GET /healthz and GET /jobs?limit=20 in
//   parallel, then GET /jobs/{id} for the surveys this page started that the
//   listing did not cover (it may be refused: /jobs is an operator endpoint,
//   and outside loopback nginx asks for credentials). Every second while a
//   survey is queued or running, every 5 s otherwise; never sooner than a
//   Retry-After the last answers carried (429, 503, 502, 504).
// - Each running survey this page started also has one waiting poll open
//   (GET /jobs/{id}?wait=30), answered the moment the survey finishes or is
//   cancelled, so its sentence appears at once instead of at the next round;
//   while every running survey is watched that way, the loop runs at its idle
//   pace. A waiting poll that fails (429, 502, ...) just ends: the loop, which
//   honours Retry-After, covers the survey again.
// - Between polls a 250 ms ticker moves the progress bars on from the last
//   answer's seconds_left, so they move smoothly without extra requests.
// - Rows are keyed by job id and updated in place: a keyboard user's focus on
//   a Cancel button survives the updates.
// - Every error answer is application/problem+json (from the worker or from
//   nginx); its title and detail are shown as they are. Text from the server
//   only ever goes in through textContent.

const POLL_ACTIVE_MS = 1000;
const POLL_IDLE_MS = 5000;
const POLL_HIDDEN_MS = 15000;
const TICK_MS = 250;
const LIST_LIMIT = 20;
const MAX_ROWS = 50;
// The longest wait the worker allows ([service] max_wait_seconds).
const WAIT_SECONDS = 30;

const $ = (id) => document.getElementById(id);

// id -> {job, at}: the last answer about the job and when it came (ms).
const jobs = new Map();
// Ids this page started, newest last; polled one by one if the listing cannot be read.
const ownIds = [];
let pollTimer = 0;
// Ids with a waiting poll open.
const watching = new Set();
let polling = false;
let pollAgain = false;
let errorFromPoll = false;
// performance.now() before which no poll starts: the last Retry-After.
let notBefore = 0;

// --- HTTP ----------------------------------------------------------------

// Never throws: a network failure is status 0 with a problem of its own.
async function api(method, path) {
  let res;
  try {
    res = await fetch(path, { method, headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (e) {
    return { status: 0, ok: false, body: null, retryAfter: 0,
             problem: { title: "Network error", detail: "The service could not be reached (" + e.message + ")." } };
  }
  const type = (res.headers.get("Content-Type") || "").split(";")[0].trim();
  let body = null;
  if (type === "application/json" || type === "application/problem+json") {
    try { body = await res.json(); } catch { body = null; }
  }
  const out = { status: res.status, ok: res.ok, body, retryAfter: retryAfterSeconds(res), problem: null };
  if (!res.ok) out.problem = problemOf(res, type, body);
  return out;
}

// Retry-After in seconds (delta-seconds or an HTTP date), 0 when absent.
function retryAfterSeconds(res) {
  const v = res.headers.get("Retry-After");
  if (!v) return 0;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const when = Date.parse(v);
  return Number.isNaN(when) ? 0 : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

function problemOf(res, type, body) {
  if (type === "application/problem+json" && body && typeof body === "object") {
    return { title: String(body.title || res.statusText || "Error"), detail: String(body.detail || "") };
  }
  // Not one of ours (a proxy in between, say): the status is all there is.
  return { title: res.statusText || "Error", detail: "The server answered " + res.status + "." };
}

// --- messages ------------------------------------------------------------

function announce(text) {
  // Cleared first so the same sentence twice is announced twice.
  const el = $("announce");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 50);
}

// context: what the page was doing, e.g. "Could not start a survey of bisons".
function showError(context, r, fromPoll) {
  const status = r.status ? " (" + r.status + ")" : "";
  $("error-title").textContent = context + ": " + r.problem.title + status + ".";
  let detail = r.problem.detail;
  if (detail && !/[.!?]$/.test(detail)) detail += ".";
  if (r.retryAfter) detail += " Retry after " + r.retryAfter + " s.";
  $("error-detail").textContent = " " + detail;
  $("error").hidden = false;
  $("error").dataset.status = String(r.status);
  errorFromPoll = fromPoll;
}

function clearError() {
  $("error").hidden = true;
  delete $("error").dataset.status;
  errorFromPoll = false;
}

// --- animals -------------------------------------------------------------

async function loadAnimals() {
  const list = $("animals");
  const r = await api("GET", "/animals");
  if (!r.ok || !Array.isArray(r.body)) {
    list.replaceChildren(note("Animals could not be loaded; retrying."));
    if (r.problem) showError("Could not load the animals", r, true);
    setTimeout(loadAnimals, Math.max(r.retryAfter, 2) * 1000);
    return;
  }
  list.replaceChildren(...r.body.map(animalItem));
  list.setAttribute("aria-busy", "false");
}

function note(text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  return li;
}

function animalItem(animal) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "animal-name";
  name.textContent = animal;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "start";
  button.dataset.animal = animal;
  button.append("Start survey");
  const hidden = document.createElement("span");
  hidden.className = "vh";
  hidden.textContent = " of " + animal;
  button.append(hidden);
  button.addEventListener("click", () => startSurvey(animal));
  li.append(name, button);
  return li;
}

// POST is the API's creating method (GET also creates, for the seed's clients).
async function startSurvey(animal) {
  const r = await api("POST", "/animals/" + encodeURIComponent(animal));
  if (r.status !== 202 || typeof r.body !== "string") {
    showError("Could not start a survey of " + animal, r.problem ? r : unexpected(r), false);
    return;
  }
  const id = r.body;
  ownIds.push(id);
  if (!jobs.has(id)) {
    const now = new Date().toISOString();
    remember({ id, animal, state: "queued", created: now, progress: 0, seconds_left: null,
               duration_seconds: null, result: null, links: { cancel: { href: "/query/" + id } } });
  }
  if (!errorFromPoll) clearError();
  announce("Survey of " + animal + " started.");
  render();
  pollSoon();
  watch(id);
}

// One waiting poll at a time for the survey until it is no longer running.
async function watch(id) {
  if (watching.has(id)) return;
  watching.add(id);
  try {
    for (;;) {
      const r = await api("GET", "/jobs/" + encodeURIComponent(id) + "?wait=" + WAIT_SECONDS);
      if (!r.ok || !r.body) break;
      remember(r.body);
      render();
      if (!active(r.body)) break;
    }
  } finally {
    watching.delete(id);
    schedule();
  }
}

function unexpected(r) {
  return { ...r, problem: { title: "Unexpected answer", detail: "The server answered " + r.status + "." } };
}

async function cancelSurvey(id) {
  const known = jobs.get(id);
  const animal = known ? known.job.animal : "the survey";
  const r = await api("DELETE", "/query/" + encodeURIComponent(id));
  if (r.status === 204) {
    if (known) remember({ ...known.job, state: "cancelled", links: {} });
    announce("Survey of " + animal + " cancelled.");
    render();
  } else if (r.problem) {
    showError("Could not cancel the survey of " + animal, r, false);
  }
  pollSoon();
}

// --- jobs ----------------------------------------------------------------

function remember(job) {
  const before = jobs.get(job.id);
  jobs.set(job.id, { job, at: performance.now() });
  if (before && before.job.state !== job.state) {
    if (job.state === "done") announce("Survey of " + job.animal + " done: " + job.result);
    else if (job.state === "cancelled" && before.job.state !== "cancelled") announce("Survey of " + job.animal + " cancelled.");
  }
}

const active = (job) => job.state === "queued" || job.state === "running";

// The bar and time left now, moved on from the last answer.
function estimate(entry) {
  const { job, at } = entry;
  if (job.state === "done") return { progress: 1, left: 0 };
  if (job.state !== "running" || job.seconds_left == null) return { progress: job.progress || 0, left: job.seconds_left };
  const elapsed = (performance.now() - at) / 1000;
  const left = Math.max(0, job.seconds_left - elapsed);
  const total = job.duration_seconds || 0;
  const progress = total > 0 ? Math.min(1, Math.max(job.progress || 0, 1 - left / total)) : job.progress || 0;
  return { progress, left };
}

function render() {
  const entries = [...jobs.values()]
    .sort((a, b) => (b.job.created || "").localeCompare(a.job.created || "") || b.job.id.localeCompare(a.job.id))
    .slice(0, MAX_ROWS);
  const body = $("jobs-body");
  const wanted = new Set(entries.map((e) => e.job.id));
  for (const tr of [...body.rows]) if (!wanted.has(tr.dataset.id)) tr.remove();
  entries.forEach((entry, i) => {
    let tr = body.querySelector('tr[data-id="' + CSS.escape(entry.job.id) + '"]');
    if (!tr) tr = newRow(entry.job);
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
    updateRow(tr, entry);
  });
  $("jobs-empty").hidden = entries.length > 0;
}

function newRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.id = job.id;
  const animal = document.createElement("th");
  animal.scope = "row";
  animal.textContent = job.animal;
  animal.title = job.id;
  const state = cell("state wide");
  const progress = cell("progress");
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", "Progress of the " + job.animal + " survey");
  const left = document.createElement("span");
  left.className = "left";
  progress.append(bar, left);
  const created = cell("created wide");
  const result = cell("result");
  const actions = cell("actions");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "cancel";
  cancel.append("Cancel");
  const hidden = document.createElement("span");
  hidden.className = "vh";
  hidden.textContent = " the " + job.animal + " survey";
  cancel.append(hidden);
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    cancelSurvey(job.id);
  });
  actions.append(cancel);
  tr.append(animal, state, progress, created, result, actions);
  return tr;
}

function cell(className) {
  const td = document.createElement("td");
  td.className = className;
  return td;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function updateRow(tr, entry) {
  const { job } = entry;
  const { progress, left } = estimate(entry);
  tr.dataset.state = job.state;
  setText(tr.querySelector(".state"), job.state);
  const bar = tr.querySelector("progress");
  bar.value = progress;
  bar.setAttribute("aria-valuetext", Math.round(progress * 100) + "%");
  // Also says the state, for phone width, where the state column is hidden.
  const leftText = job.state === "running" && left != null ? left.toFixed(1) + " s left" : job.state;
  setText(tr.querySelector(".left"), leftText);
  setText(tr.querySelector(".created"), job.created ? new Date(job.created).toLocaleTimeString() : "");
  setText(tr.querySelector(".result"), job.state === "done" ? job.result || "" : active(job) ? "…" : "—");
  const cancel = tr.querySelector(".cancel");
  const cancellable = active(job) && job.links && job.links.cancel;
  cancel.hidden = !cancellable;
  if (cancellable && job.state !== tr.dataset.shownState) cancel.disabled = false;
  tr.dataset.shownState = job.state;
}

function tick() {
  for (const tr of $("jobs-body").rows) {
    const entry = jobs.get(tr.dataset.id);
    if (entry && entry.job.state === "running") updateRow(tr, entry);
  }
}

// --- health --------------------------------------------------------------

function renderHealth(r) {
  const h = r.body && typeof r.body === "object" && "status" in r.body && r.body.jobs ? r.body : null;
  if (!h) {
    $("health-note").hidden = false;
    $("health-note").textContent = r.status === 401 || r.status === 403
      ? "The counters are for operators: open this page from the host itself, or sign in."
      : "The counters could not be read" + (r.problem ? ": " + r.problem.title + " (" + r.status + ")." : ".");
    return;
  }
  $("health-note").hidden = true;
  setText($("h-status"), h.status);
  $("h-status").dataset.status = h.status;
  setText($("h-queued"), String(h.jobs.queued));
  setText($("h-running"), String(h.jobs.running));
  setText($("h-held"), String(h.jobs.held));
  setText($("h-store"), h.store);
  setText($("h-uptime"), duration(h.uptime_seconds));
  setText($("h-version"), h.version);
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

// --- the poll loop -------------------------------------------------------

async function poll() {
  if (polling) { pollAgain = true; return; }
  polling = true;
  clearTimeout(pollTimer);
  let retryAfter = 0;
  try {
    retryAfter = await pollOnce();
  } finally {
    polling = false;
  }
  notBefore = performance.now() + retryAfter * 1000;
  if (pollAgain) {
    pollAgain = false;
    pollSoon();
  } else {
    schedule();
  }
}

// One round; returns the longest Retry-After (s) its answers carried, or 0.
async function pollOnce() {
  const [health, listing] = await Promise.all([api("GET", "/healthz"), api("GET", "/jobs?limit=" + LIST_LIMIT)]);
  renderHealth(health);
  const covered = new Set();
  const answers = [health, listing];
  if (listing.ok && listing.body && Array.isArray(listing.body.jobs)) {
    $("jobs-note").hidden = true;
    for (const job of listing.body.jobs) {
      remember(job);
      covered.add(job.id);
    }
    // Older surveys leave the table, except this page's own, which are then
    // read one by one below; nothing stale stays "running".
    for (const id of [...jobs.keys()]) if (!covered.has(id) && !ownIds.includes(id)) jobs.delete(id);
  } else {
    $("jobs-note").hidden = false;
    $("jobs-note").textContent = listing.status === 401 || listing.status === 403
      ? "The full listing is for operators; showing the surveys started on this page."
      : "The listing could not be read; showing the surveys started on this page.";
  }
  for (const id of ownIds) {
    const entry = jobs.get(id);
    if (covered.has(id) || (entry && !active(entry.job))) continue;
    const r = await api("GET", "/jobs/" + encodeURIComponent(id));
    answers.push(r);
    if (r.ok && r.body) remember(r.body);
    else if (r.status === 404 && entry) remember({ ...entry.job, state: "expired", links: {} });
  }
  render();
  reportPollErrors(answers);
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  return Math.max(0, ...answers.map((a) => a.retryAfter));
}

// The listing's 401/403 is expected for non-operators and only noted.
function reportPollErrors(answers) {
  const failed = answers.find((a) => a.problem && a.status !== 401 && a.status !== 403 && a.status !== 404);
  if (failed) showError("Could not refresh", failed, true);
  else if (errorFromPoll) clearError();
}

// The next round: soon while surveys run, rarely when idle or hidden, and
// never before a Retry-After has passed.
function schedule() {
  const anyActive = [...jobs.values()].some((e) => active(e.job) && !watching.has(e.job.id));
  const ms = document.hidden ? POLL_HIDDEN_MS : anyActive ? POLL_ACTIVE_MS : POLL_IDLE_MS;
  setPollTimer(ms);
}

// After a click: refresh now rather than at the next turn of the loop.
function pollSoon() {
  setPollTimer(100);
}

function setPollTimer(ms) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, Math.max(ms, notBefore - performance.now()));
}

function start() {
  $("error-dismiss").addEventListener("click", clearError);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) pollSoon(); });
  loadAnimals();
  poll();
  setInterval(tick, TICK_MS);
}

start();
