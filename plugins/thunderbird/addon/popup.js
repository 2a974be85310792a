// SPDX-License-Identifier: LGPL-2.1-or-later
/* The cacmail page: the toolbar button's popup, and the window the Tools menu opens
 * (popup.html?window=1). It shows the state the background page keeps (background.js) and sends
 * it the user's actions; the PIN and passwords typed here go to the background page in memory
 * and the fields are cleared at once. */
"use strict";

const params = new URLSearchParams(location.search);
const inWindow = params.has("window");
const $ = id => document.getElementById(id);
const ui = browser.runtime.connect({ name: "ui" });
let current = null;
let shownAsk = null;

if (inWindow) {
  document.body.classList.add("window");
}

function send(msg) {
  ui.postMessage(msg);
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) {
    e.textContent = text;
  }
  if (cls) {
    e.className = cls;
  }
  return e;
}

function words(list) {
  return (list || []).map(x => (typeof x === "string" ? x : x.message || x.code || ""))
    .filter(Boolean);
}

function certName(s) {
  return s ? s.name : "none";
}

function sameCert(a, b) {
  return (a ? a.dbkey : null) === (b ? b.dbkey : null) && (a ? a.name : null) === (b ? b.name : null);
}

function renderIdentities(s) {
  const list = $("identity-list");
  const status = $("check-status");
  list.replaceChildren();
  if (s.checkError) {
    status.textContent = s.checkError.message;
    status.className = "state-bad";
    return;
  }
  status.className = "";
  if (!s.check) {
    status.textContent = "Checking the mail identities...";
    return;
  }
  const idents = s.check.identities || [];
  status.textContent = idents.length ? "" : "This profile has no mail identity.";
  for (const ident of idents) {
    const li = el("li");
    const ok = ident.state === "ok";
    li.append(el("span", `${ident.name || ident.id} <${ident.address}>: `));
    li.append(el("span", ok ? "ok" : ident.state || "unknown", ok ? "state-ok" : "state-bad"));
    const cur = ident.current || {};
    const prop = ident.proposed || {};
    li.append(el("div", `Signing: ${certName(cur.signing)}; encryption: ${certName(cur.encryption)}`,
                 "why"));
    // the sentences; the reason codes are for scripts (docs/thunderbird.md)
    for (const why of words(ident.messages)) {
      li.append(el("div", why, "why"));
    }
    for (const p of ident.problems || []) {
      li.append(el("div", `${p.message || p.code}${p.hint ? " " + p.hint : ""}`, "why"));
    }
    if (!ok && (!sameCert(cur.signing, prop.signing) || !sameCert(cur.encryption, prop.encryption))) {
      li.append(el("div", `Fix sets signing: ${certName(prop.signing)}; encryption: ` +
                          `${certName(prop.encryption)}`, "why"));
    }
    list.append(li);
  }
}

function renderJob(s) {
  const job = s.job;
  const running = !!job && (job.status === "running" || job.status === "asking");
  for (const id of ["fix", "undo", "republish", "import", "import-go"]) {
    $(id).disabled = running;
  }
  $("job").hidden = !job;
  // while a task is shown, each identity keeps one line: the popup stays short
  $("identities").classList.toggle("compact", !!job);
  if (!job) {
    return;
  }
  $("job-title").textContent = job.title;
  const steps = $("job-steps");
  steps.replaceChildren(...job.steps.filter(Boolean).map(t => el("li", t, / done$/.test(t) ? "done" : "")));
  const result = $("job-result");
  result.replaceChildren();
  if (job.status === "running") {
    result.append(el("p", "Working..."));
  } else if (job.status === "ok") {
    result.append(el("p", "Done.", "ok"));
    const ul = el("ul");
    for (const line of job.lines) {
      ul.append(el("li", line));
    }
    result.append(ul);
  } else if (job.status === "cancelled") {
    result.append(el("p", "Cancelled: nothing was changed."));
  } else if (job.status === "error") {
    result.append(el("p", job.error.message, "error"));
  }
  const asking = job.status === "asking" && job.ask;
  $("ask-form").hidden = !asking;
  // every state update is a new copy: compare the question, not the object
  const askKey = asking ? JSON.stringify(job.ask) : null;
  if (asking && shownAsk !== askKey) {
    shownAsk = askKey;
    $("ask-prompt").textContent = job.ask.prompt;
    $("secret").value = "";
    $("secret").focus();
  }
  if (!asking) {
    shownAsk = null;
  }
  $("job-cancel").hidden = !running || !!asking; // a question has its own Cancel
  $("job-dismiss").hidden = running;
}

ui.onMessage.addListener(s => {
  current = s;
  renderIdentities(s);
  renderJob(s);
});

function openImportWindow() {
  browser.windows.create({ type: "popup", url: "popup.html?window=1&show=import",
                           width: 560, height: 700 });
  window.close();
}

$("fix").addEventListener("click", () => send({ action: "fix" }));
$("undo").addEventListener("click", () => send({ action: "undo" }));
$("republish").addEventListener("click", () => send({ action: "republish" }));
$("import").addEventListener("click", () => {
  // the file chooser would close a popup: a window holds the form
  if (!inWindow) {
    openImportWindow();
    return;
  }
  $("import-form").hidden = false;
  $("p12-file").focus();
});
$("browse").addEventListener("click", async () => {
  const path = await browser.cacmail.pickFile("Import Recovered Key");
  if (path) {
    $("p12-file").value = path;
    $("p12-password").focus();
  }
});
$("import-form").addEventListener("submit", e => {
  e.preventDefault();
  const file = $("p12-file").value.trim();
  if (!file) {
    $("p12-file").focus();
    return;
  }
  send({ action: "import", file, password: $("p12-password").value });
  $("p12-password").value = "";
});
$("import-close").addEventListener("click", () => {
  $("import-form").hidden = true;
});
$("ask-form").addEventListener("submit", e => {
  e.preventDefault();
  send({ action: "answer", secret: $("secret").value });
  $("secret").value = "";
});
$("ask-cancel").addEventListener("click", () => {
  send({ action: "answer", cancel: true });
  $("secret").value = "";
});
$("job-cancel").addEventListener("click", () => send({ action: "cancel" }));
$("job-dismiss").addEventListener("click", () => send({ action: "dismiss" }));

if (params.get("show") === "import") {
  send({ action: "dismiss" }); // the last task's outcome is not this window's
  $("import-form").hidden = false;
  $("p12-file").focus();
}
send({ action: "check" });
