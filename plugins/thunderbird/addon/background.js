// SPDX-License-Identifier: LGPL-2.1-or-later
/* cacmail's background page: the one connection to the native messaging host cacmail_native
 * (cacmail-native, in C), the one task at a time (check, fix, republish, import), and the
 * state every cacmail page shows (popup.js). Pages talk to it over a runtime port named "ui":
 * they send {action: ...} and receive the whole state after every change.
 *
 * Secrets (the PIN, the LDAP password, a PKCS#12 password) go from the page to the host
 * through here in memory only: never stored, never logged. */
"use strict";

const HOST = "cacmail_native";

const state = {
  check: null,        // the last check document (cacmail thunderbird check --json)
  checkError: null,   // {code, message} when it failed
  checking: false,
  job: null,          // {kind, title, status: running|asking|ok|error|cancelled, steps, ask,
                      //  lines, error}
};

const uiPorts = new Set();
let host = null;      // the native port
let nextId = 1;
const pending = new Map(); // request id -> {resolve, reject, onProgress, onAsk}

/* ---- the native host -------------------------------------------------------------------- */

function hostError(why) {
  if (/No such native application/i.test(why || "")) {
    return {
      code: "host-missing",
      message: "cacmail's helper is not installed for Thunderbird (no native messaging host " +
        "cacmail_native): install cacmail with 'meson install', which puts its manifest in " +
        "/usr/lib/mozilla/native-messaging-hosts, then restart Thunderbird",
    };
  }
  return {
    code: "host-gone",
    message: "cacmail's helper (cacmail-native) stopped" + (why ? ` (${why})` : "") +
      " before it finished: nothing more was done; try again, and if it keeps stopping " +
      "run 'cacmail thunderbird check' in a terminal to see why",
  };
}

function connectHost() {
  if (host) {
    return host;
  }
  const port = browser.runtime.connectNative(HOST);
  port.onMessage.addListener(onHostMessage);
  port.onDisconnect.addListener(p => {
    const err = hostError(p.error ? p.error.message : "");
    if (host === port) {
      host = null;
    }
    for (const req of pending.values()) {
      req.reject(err);
    }
    pending.clear();
  });
  host = port;
  return port;
}

function onHostMessage(msg) {
  const req = pending.get(msg.id);
  if (!req) {
    return;
  }
  if (msg.progress) {
    req.onProgress?.(msg.progress);
  } else if (msg.ask) {
    req.onAsk?.(msg.ask);
  } else if ("ok" in msg) {
    pending.delete(msg.id);
    if (msg.ok) {
      req.resolve(msg.result);
    } else {
      req.reject(msg.error);
    }
  }
}

/* Send {command, ...params} and resolve with the host's result. */
function request(command, params = {}, handlers = {}) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, ...handlers });
    try {
      connectHost().postMessage({ id, command, ...params });
    } catch (e) {
      pending.delete(id);
      reject(hostError(e.message));
    }
    handlers.onStart?.(id);
  });
}

/* ---- state for the pages ---------------------------------------------------------------- */

function publish() {
  for (const p of uiPorts) {
    p.postMessage(state);
  }
}

function asError(e) {
  if (e && e.code && e.message) {
    return e;
  }
  return { code: "failed", message: String(e && e.message ? e.message : e) };
}

async function profile() {
  return browser.cacmail.getProfileDirectory();
}

async function runCheck() {
  state.checking = true;
  publish();
  try {
    await browser.cacmail.savePrefs();
    state.check = await request("check", { profile: await profile(),
                                           live: await browser.cacmail.getSmimePrefs() });
    state.checkError = null;
  } catch (e) {
    state.checkError = asError(e);
  }
  state.checking = false;
  publish();
}

function busy() {
  return state.job && (state.job.status === "running" || state.job.status === "asking");
}

/* Run one task: @body(job) fills job.lines and returns; a throw is the task's error. */
async function runJob(kind, title, body) {
  if (busy()) {
    return;
  }
  const job = { kind, title, status: "running", steps: [], lines: [], ask: null, error: null,
                hostId: null };
  state.job = job;
  publish();
  try {
    await body(job);
    job.status = "ok";
  } catch (e) {
    job.error = asError(e);
    job.status = job.error.code === "cancelled" ? "cancelled" : "error";
  }
  job.ask = null;
  publish();
}

function describeCert(s) {
  return s ? s.name : "none";
}

async function fix(job) {
  const prof = await profile();
  await browser.cacmail.savePrefs();
  const plan = await request("fix", { profile: prof, live: await browser.cacmail.getSmimePrefs() },
                            { onStart: id => (job.hostId = id) });
  if (plan.prefs.length) {
    const done = await browser.cacmail.setSmimePrefs(
      plan.prefs.map(p => ({ name: p.name, value: p.value })));
    // recorded by the host, so that Undo Last Fix gives back exactly what was there
    await request("fixed", {
      profile: prof,
      changes: done.map(d => ({ name: d.name, value: d.value, previous: d.old })),
    });
  }
  for (const ident of plan.identities) {
    const who = `${ident.name || ident.id} <${ident.address}>`;
    if (ident.changed) {
      job.lines.push(`${who}: now signs with ${describeCert(ident.signing)} and encrypts ` +
                     `with ${describeCert(ident.encryption)}.`);
    } else if (ident.state === "ok") {
      job.lines.push(`${who}: already right, nothing changed.`);
    } else {
      job.lines.push(`${who}: nothing to set, the card has no usable certificate for this ` +
                     "address.");
      for (const p of ident.problems || []) {
        job.lines.push(`${who}: ${p.message}${p.hint ? " " + p.hint : ""}`);
      }
    }
  }
  if (!plan.identities.length) {
    job.lines.push("This profile has no mail identity to fix.");
  }
  await runCheck();
}

async function undo(job) {
  const prof = await profile();
  const plan = await request("undo", { profile: prof }, { onStart: id => (job.hostId = id) });
  const done = await browser.cacmail.setSmimePrefs(
    plan.prefs.map(p => ({ name: p.name, value: p.value })));
  for (const d of done) {
    job.lines.push(`${d.name}: ${d.value === null ? "cleared" : d.value}`);
  }
  if (!done.length) {
    job.lines.push("The last fix changed nothing.");
  }
  await runCheck();
}

async function defaultAddress() {
  try {
    const account = await browser.accounts.getDefault();
    const ident = account && (await browser.identities.getDefault(account.id));
    return ident ? ident.email : null;
  } catch (e) {
    return null;
  }
}

async function republish(job) {
  const params = { profile: await profile() };
  const email = await defaultAddress();
  if (email) {
    params.email = email;
  }
  const result = await request("republish", params, {
    onStart: id => (job.hostId = id),
    onProgress: p => {
      job.steps[p.index - 1] = p.text;
      publish();
    },
    onAsk: a => {
      job.status = "asking";
      job.ask = a;
      publish();
    },
  });
  job.lines = result.summary;
}

async function importKey(job, file, password) {
  const result = await request("import-p12", { profile: await profile(), file, password },
                               { onStart: id => (job.hostId = id) });
  job.lines = result.summary;
}

/* ---- actions from the pages ------------------------------------------------------------- */

function answer(msg) {
  const job = state.job;
  if (!job || job.status !== "asking" || job.hostId === null) {
    return;
  }
  job.status = "running";
  job.ask = null;
  const params = msg.cancel ? { job: job.hostId, cancel: true }
                            : { job: job.hostId, secret: msg.secret };
  request("answer", params).catch(() => {});
  publish();
}

function cancel() {
  const job = state.job;
  if (!busy() || job.hostId === null) {
    return;
  }
  if (job.status === "asking") {
    answer({ cancel: true });
  }
  request("cancel", { job: job.hostId }).catch(() => {});
}

const TITLES = {
  fix: "Fix S/MIME Settings",
  undo: "Undo Last Fix",
  republish: "Republish Certificates to GAL",
  import: "Import Recovered Key",
};

function onUiMessage(msg) {
  switch (msg.action) {
    case "check":
      if (!state.checking && !busy()) {
        runCheck();
      }
      break;
    case "fix":
      runJob("fix", TITLES.fix, fix);
      break;
    case "undo":
      runJob("undo", TITLES.undo, undo);
      break;
    case "republish":
      runJob("republish", TITLES.republish, republish);
      break;
    case "import":
      runJob("import", TITLES.import, job => importKey(job, msg.file, msg.password));
      break;
    case "answer":
      answer(msg);
      break;
    case "cancel":
      cancel();
      break;
    case "dismiss":
      if (!busy()) {
        state.job = null;
        publish();
      }
      break;
  }
}

browser.runtime.onConnect.addListener(port => {
  if (port.name !== "ui") {
    return;
  }
  uiPorts.add(port);
  port.onMessage.addListener(onUiMessage);
  port.onDisconnect.addListener(() => uiPorts.delete(port));
  port.postMessage(state);
});

/* ---- the Tools menu --------------------------------------------------------------------- */

const MENU = [
  ["republish", "Republish Certificates to GAL"],
  ["fix", "Fix S/MIME Settings"],
  ["import", "Import Recovered Key..."],
];

for (const [id, title] of MENU) {
  browser.menus.create({ id: `cacmail-${id}`, title, contexts: ["tools_menu"] });
}

browser.menus.onClicked.addListener(info => {
  const id = String(info.menuItemId).replace(/^cacmail-/, "");
  if (id === "fix" || id === "republish") {
    onUiMessage({ action: id });
  }
  browser.windows.create({
    type: "popup",
    url: `popup.html?window=1${id === "import" ? "&show=import" : ""}`,
    width: 560,
    height: 700,
  });
});
