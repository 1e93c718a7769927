// The dashboard in real headless Chromium (Debian's /usr/bin/chromium),
// driven by playwright-core, against a live stack.
//
// Run by tests/ui/run.sh, which starts the stack (tests/ui/serve.py: a 3-5 s
// workload and max_jobs = 3, so the 4th survey in flight is refused with 503)
// and sets:
//   ZK_URL          the page, https://localhost:<port>/
//   ZK_PLAYWRIGHT   the folder holding node_modules/playwright-core
//   ZK_UI_OUT       where screenshots and the browser profile go (under build/)
//   ZK_RESULTS      the file that gets "<passed> <failed>"
//
// Each step is one test, run in order on one page like a person would: a
// step that fails is reported with what the page showed, and the next steps
// still run (they then often fail too, which the first failure explains).
// Only the page's own buttons start and cancel surveys; the API is read
// through the page's origin (page.evaluate + fetch) only to confirm.

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const URL_ = need("ZK_URL");
const OUT = need("ZK_UI_OUT");
const RESULTS = need("ZK_RESULTS");
const require = createRequire(path.join(need("ZK_PLAYWRIGHT"), "package.json"));
const { chromium } = require("playwright-core");

const STEP_TIMEOUT_MS = 20000;
const RUN_TIMEOUT_MS = 150000;
const SENTENCE = (animal) => new RegExp("^[A-Z][a-z]+ " + animal + " [a-z]+ [a-z]+$");

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`dashboard.test: ${name} is not set (run tests/ui/run.sh)`);
    process.exit(2);
  }
  return v;
}

const results = { passed: 0, failed: 0 };

function writeResults() {
  fs.mkdirSync(path.dirname(path.resolve(RESULTS)), { recursive: true });
  fs.writeFileSync(RESULTS + ".tmp", `${results.passed} ${results.failed}\n`);
  fs.renameSync(RESULTS + ".tmp", RESULTS);
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function step(name, fn) {
  const t0 = Date.now();
  let error = null;
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`step timed out after ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS); }),
    ]);
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
  }
  const dt = ((Date.now() - t0) / 1000).toFixed(2);
  results[error ? "failed" : "passed"]++;
  console.log(`${error ? "FAIL" : "PASS"} ${name.padEnd(44)} ${dt.padStart(6)}s`);
  if (error) for (const line of String(error.message || error).split("\n")) console.log("      " + line);
  return !error;
}

// --- page helpers --------------------------------------------------------

const row = (page, animal) => page.locator("#jobs-body tr", { has: page.locator("th", { hasText: new RegExp("^" + animal + "$") }) });

async function rowState(r) {
  return r.getAttribute("data-state");
}

async function describeRow(r) {
  if ((await r.count()) === 0) return "(no row)";
  return (await r.first().innerText()).replace(/\s+/g, " ");
}

async function startSurvey(page, animal) {
  await page.getByRole("button", { name: "Start survey of " + animal, exact: true }).click();
}

// Waits until pred() is true, polling every 100 ms; fails with describe().
async function waitFor(pred, timeoutMs, describe) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(await describe());
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function errorBanner(page) {
  const box = page.locator("#error");
  if (!(await box.isVisible())) return "(no error shown)";
  return `[${await box.getAttribute("data-status")}] ` + (await box.innerText()).replace(/\s+/g, " ");
}

// --- the run -------------------------------------------------------------

async function run() {
  fs.mkdirSync(OUT, { recursive: true });
  const profile = fs.mkdtempSync(path.join(OUT, "profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    // The stack's certificate is self-signed; its TLS is tested elsewhere.
    ignoreHTTPSErrors: true,
    viewport: { width: 1100, height: 900 },
  });
  const problems = [];
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => problems.push("uncaught: " + e.message));
  page.on("console", (m) => {
    // Chromium logs every 4xx/5xx fetch as "Failed to load resource"; the
    // errors this test provokes are expected. Anything else (a CSP refusal,
    // a script error) is not.
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push("console: " + m.text());
  });
  try {
    await steps(page, problems);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function steps(page, problems) {
  await step("page_loads_animals_and_counters", async () => {
    const res = await page.goto(URL_);
    check(res && res.status() === 200, `GET / answered ${res && res.status()}`);
    const csp = res.headers()["content-security-policy"] || "";
    check(/script-src 'self'/.test(csp) && /default-src 'none'/.test(csp), "page CSP: " + csp);
    await page.getByRole("button", { name: "Start survey of bisons", exact: true }).waitFor();
    const n = await page.locator("#animals button.start").count();
    check(n >= 10, `${n} start buttons, want one per animal (14)`);
    await waitFor(async () => (await page.locator("#h-status").innerText()) === "ok", 5000,
                  async () => "health status shows " + (await page.locator("#h-status").innerText()));
    check(/^\d+$/.test(await page.locator("#h-running").innerText()), "running counter is not a number");
    check(await page.locator("#jobs thead th").count() === 6, "the survey table lacks its header cells");
  });

  await step("start_survey_progress_bar_advances", async () => {
    await startSurvey(page, "bisons");
    const r = row(page, "bisons");
    await waitFor(async () => (await r.count()) === 1 && (await rowState(r)) === "running", 8000,
                  async () => "the bisons row never showed running: " + (await describeRow(r)));
    const bar = r.locator("progress");
    const p1 = await bar.evaluate((b) => b.value);
    await page.waitForTimeout(1200);
    const p2 = await bar.evaluate((b) => b.value);
    check(p2 > p1 && p2 < 1, `progress went ${p1} -> ${p2} in 1.2 s, want it to grow below 1`);
    check(/\d+\.\d s left/.test(await r.locator(".left").innerText()), "no seconds left shown: " + (await describeRow(r)));
    check(await r.getByRole("button", { name: "Cancel the bisons survey" }).isVisible(), "no Cancel button while running");
  });

  await step("sentence_appears_when_done", async () => {
    const r = row(page, "bisons");
    // The page keeps a waiting poll open for its running survey: the sentence
    // must show within a second of the survey's deadline, not a round later.
    const deadline = await page.evaluate(async () => {
      const res = await fetch("/jobs?limit=20&animal=bisons&state=running", { cache: "no-store" });
      const body = await res.json();
      return body.jobs.length ? Date.parse(body.jobs[0].deadline) : NaN;
    });
    check(!Number.isNaN(deadline), "no running bisons survey in the listing");
    const end = Date.now() + 9000;
    while ((await rowState(r)) !== "done") {
      if (Date.now() > end) throw new Error("not done 9 s later: " + (await describeRow(r)));
      await new Promise((res) => setTimeout(res, 20));
    }
    const late = Date.now() - deadline;
    console.log(`ui: the sentence appeared ${late} ms after the survey's deadline`);
    check(late < 1000, `the sentence appeared ${late} ms after the survey's deadline (limit 1000 ms)`);
    const sentence = await r.locator(".result").innerText();
    check(SENTENCE("bisons").test(sentence), `result ${JSON.stringify(sentence)} is not a bisons sentence`);
    check(await r.locator("progress").evaluate((b) => b.value) === 1, "done, but the bar is not full");
    check(!(await r.locator("button.cancel").isVisible()), "a done survey still offers Cancel");
    await waitFor(async () => (await page.locator("#announce").textContent()).includes(sentence), 2000,
                  async () => `the live region says ${JSON.stringify(await page.locator("#announce").textContent())}, not the sentence`);
    await page.screenshot({ path: path.join(OUT, "dashboard-done.png"), fullPage: true });
  });

  await step("cancel_a_running_survey", async () => {
    await startSurvey(page, "zebras");
    const r = row(page, "zebras");
    const cancel = r.getByRole("button", { name: "Cancel the zebras survey" });
    await cancel.waitFor({ state: "visible", timeout: 5000 });
    await cancel.click();
    await waitFor(async () => (await rowState(r)) === "cancelled", 5000,
                  async () => "not cancelled: " + (await describeRow(r)));
    check(!(await cancel.isVisible()), "Cancel still offered after cancelling");
    const id = await r.getAttribute("data-id");
    const job = await page.evaluate(async (i) => (await fetch("/jobs/" + i)).json(), id);
    check(job.state === "cancelled", `GET /jobs/${id} says ${job.state}`);
    await page.waitForTimeout(1500);  // a poll round later it must still say so
    check((await rowState(r)) === "cancelled", "the row went back to " + (await rowState(r)));
  });

  await step("error_503_too_many_surveys_shown", async () => {
    // max_jobs = 3: the 4th survey in flight is refused with 503 + Retry-After.
    for (let i = 0; i < 4; i++) await startSurvey(page, "pandas");
    await waitFor(async () => (await page.locator("#error").getAttribute("data-status")) === "503", 5000,
                  async () => "no 503 shown: " + (await errorBanner(page)));
    const text = await errorBanner(page);
    check(/Could not start a survey of pandas/.test(text), "error lacks what failed: " + text);
    check(/Too many surveys in flight \(503\)/.test(text), "error lacks the problem title and status: " + text);
    check(/survey limit/.test(text) && /Retry after \d+ s/.test(text), "error lacks detail or Retry-After: " + text);
    check(await page.locator("#error").getAttribute("role") === "alert", "the error box is not role=alert");
    check(await row(page, "pandas").count() === 3, `${await row(page, "pandas").count()} pandas rows, want 3`);
    await page.waitForTimeout(1000);  // bars part-way for the screenshot
    await page.screenshot({ path: path.join(OUT, "dashboard.png"), fullPage: true });
  });

  await step("error_429_rate_limit_shown", async () => {
    await page.getByRole("button", { name: "Dismiss" }).click();
    check(!(await page.locator("#error").isVisible()), "Dismiss left the error shown");
    // nginx lets one address create 10/s with a burst of 20; 40 clicks in
    // one go overrun it. The box shows each answer as it lands, so every
    // status it shows is recorded as it changes rather than sampled.
    await page.evaluate(() => {
      const box = document.getElementById("error");
      window.zkShown = [];
      new MutationObserver(() => { if (box.dataset.status) window.zkShown.push(box.dataset.status); })
        .observe(box, { attributes: true, childList: true, subtree: true });
      const b = document.querySelector('button.start[data-animal="koalas"]');
      for (let i = 0; i < 40; i++) b.click();
    });
    await page.waitForFunction(() => window.zkShown.includes("429"), null, { timeout: 8000 })
      .catch(async () => {
        throw new Error("no 429 shown; statuses shown: " + (await page.evaluate(() => window.zkShown.join(" "))) +
                        "; now: " + (await errorBanner(page)));
      });
    await page.waitForTimeout(300);
    const text = await errorBanner(page);
    check(/Too Many Requests \(429\)|Too many surveys in flight \(503\)/.test(text), "error text: " + text);
  });

  await step("phone_width_layout", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(OUT, "dashboard-phone.png"), fullPage: true });
    const wide = await page.evaluate(() => {
      const w = window.innerWidth;
      const table = document.querySelector(".table-wrap");
      const out = [...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > w + 1);
      return { page: document.documentElement.scrollWidth - w, table: table.scrollWidth - table.clientWidth,
               els: out.slice(-3).map((el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")) };
    });
    check(wide.page <= 0, `the page is ${wide.page}px wider than a 390px screen; sticking out: ${wide.els.join(", ")}`);
    check(wide.table <= 0, `the survey table needs ${wide.table}px of sideways scrolling; sticking out: ${wide.els.join(", ")}`);
    check(!(await page.locator("th.wide, td.wide").first().isVisible()), "the State and Created columns are shown at phone width");
  });

  await step("no_script_errors_or_csp_refusals", async () => {
    check(problems.length === 0, problems.join("\n"));
  });
}

const watchdog = setTimeout(() => {
  console.log(`ABORT: the run exceeded ${RUN_TIMEOUT_MS / 1000} s`);
  results.failed++;
  writeResults();
  process.exit(1);
}, RUN_TIMEOUT_MS);

process.on("unhandledRejection", (e) => {
  console.log("FAIL unhandled_rejection " + (e && e.stack ? e.stack : e));
  results.failed++;
});

try {
  await run();
} catch (e) {
  results.failed++;
  console.log("FAIL browser_session " + (e.stack || e));
}
clearTimeout(watchdog);
writeResults();
console.log(`ui: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed ? 1 : 0);
