// The opentac console: drives the sandbox's control API from the browser. No dependencies.
"use strict";

const CONFIG = JSON.parse(document.body.dataset.config);
const AUTH = "Basic " + btoa(CONFIG.apiKey + ":" + CONFIG.apiSecret);
const CHANNELS = ["sms", "whatsapp", "rcs", "chat"];
const LABELS = { sms: "SMS", whatsapp: "WhatsApp", rcs: "RCS", chat: "Chat" };
const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data")) node.setAttribute(key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// -- the control API ------------------------------------------------------------------------
const own = []; // requests this page made, to tell them apart in the log

async function api(method, path, body) {
  own.push({ method, path: path.split("?")[0], at: Date.now() / 1000 });
  if (own.length > 500) own.splice(0, own.length - 500);
  const response = await fetch(path, {
    method,
    headers: body === undefined ? { Authorization: AUTH } : { Authorization: AUTH, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.message) || `${method} ${path}: ${response.status}`);
  return data;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- the customer ---------------------------------------------------------------------------
const state = { number: "", email: "", profile: null, threads: {}, call: null, tasksSeen: 0 };

function address(channel) {
  if (channel === "whatsapp") return "whatsapp:" + state.number;
  if (channel === "rcs") return "rcs:" + state.number;
  if (channel === "chat") return state.email || "web-visitor-" + state.number.replace(/\D/g, "");
  return state.number;
}

async function chooseCustomer() {
  const wanted = new URLSearchParams(location.search).get("customer");
  const { profiles } = await api("GET", "/sandbox/memory/profiles");
  const withPhone = profiles.find((p) => (p.traits.Contact || {}).phone === wanted) ||
    profiles.find((p) => (p.traits.Contact || {}).phone);
  state.number = wanted || (withPhone ? withPhone.traits.Contact.phone : "+15005550123");
  state.email = withPhone && withPhone.traits.Contact.phone === state.number ? withPhone.traits.Contact.email || "" : "";
  $("#customer-number").value = state.number;
}

// -- messaging threads ----------------------------------------------------------------------
function buildThreads() {
  const holder = $("#threads");
  for (const channel of CHANNELS) {
    const thread = el("div", { class: "thread", dataTestid: `thread-${channel}`, "ariaLive": "polite" });
    const input = el("input", { placeholder: `Text the agent on ${LABELS[channel]}`, autocomplete: "off", dataTestid: `input-${channel}` });
    const form = el("form", { class: "composer" }, input, el("button", { dataTestid: `send-${channel}` }, "Send"));
    const view = el("div", { class: "thread-view", id: `view-${channel}`, hidden: channel !== "sms" }, thread, form);
    holder.append(view);
    state.threads[channel] = { thread, cursor: null, pending: [], polling: false };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      send(channel, text).catch((error) => bubble(thread, "system", "could not send: " + error.message));
    });
  }
}

function bubble(thread, who, text, timing) {
  const node = el("div", { class: `bubble ${who}` }, text);
  if (timing) node.append(el("span", { class: "timing" }, timing));
  thread.append(node);
  thread.scrollTop = thread.scrollHeight;
  return node;
}

async function send(channel, text) {
  const t = state.threads[channel];
  bubble(t.thread, "customer", text);
  t.pending.push(performance.now());
  const result = await api("POST", `/sandbox/customers/${channel}/messages`, { text, address: address(channel) });
  if (t.cursor === null) t.cursor = result.seq - 1;
  pollReplies(channel);
}

async function pollReplies(channel) {
  const t = state.threads[channel];
  if (t.polling) return;
  t.polling = true;
  while (t.pending.length) {
    try {
      const query = new URLSearchParams({ address: address(channel), after: t.cursor, wait: 25 });
      const result = await api("GET", `/sandbox/customers/${channel}/replies?${query}`);
      for (const reply of result.replies) {
        const sent = t.pending.shift();
        const ms = sent === undefined ? null : Math.round(performance.now() - sent);
        bubble(t.thread, "agent", reply.content.text, ms === null ? null : `reply in ${ms} ms`);
        if (ms !== null) logTurn(`${LABELS[channel]} turn: reply after ${ms} ms`, ms);
      }
      t.cursor = result.cursor;
      if (result.replies.length) refreshMemory();
    } catch (error) {
      await sleep(1000);
    }
  }
  t.polling = false;
}

// -- voice ----------------------------------------------------------------------------------
const SPEECH_LANGUAGES = { spanish: "es-ES", es: "es-ES", "español": "es-ES", french: "fr-FR", fr: "fr-FR",
  "français": "fr-FR", german: "de-DE", de: "de-DE", deutsch: "de-DE", english: "en-US", en: "en-US" };

function speechLanguage() {
  // The customer's language trait, as the agent follows it; else the browser's language.
  const trait = state.profile && (state.profile.traits.Contact || {}).language;
  return SPEECH_LANGUAGES[String(trait || "").trim().toLowerCase()] || navigator.language || "en-US";
}

const voiceThread = () => $("#voice-thread");

function setCallControls(active) {
  for (const id of ["#voice-input", "#voice-say", "#voice-interrupt", "#call-hangup", "#voice-mic"]) $(id).disabled = !active;
  for (const key of document.querySelectorAll(".keypad button")) key.disabled = !active;
  $("#call-start").disabled = active;
}

async function startCall() {
  $("#call-start").disabled = true;
  $("#call-status").textContent = "calling…";
  try {
    const call = await api("POST", "/sandbox/voice/calls", { from: state.number });
    state.call = { sid: call.callSid, cursor: 0, reply: null, promptAt: null, firstAt: null, ended: false };
    $("#call-status").textContent = `in call ${call.callSid.slice(0, 10)}…`;
    bubble(voiceThread(), "system", `call connected (${call.callSid})`);
    setCallControls(true);
    followCall(state.call);
  } catch (error) {
    $("#call-status").textContent = "the call failed: " + error.message;
    $("#call-start").disabled = false;
  }
}

async function followCall(call) {
  while (!call.ended) {
    let result;
    try {
      result = await api("GET", `/sandbox/console/calls/${call.sid}/events?after=${call.cursor}&wait=25`);
    } catch (error) {
      await sleep(1000);
      continue;
    }
    for (const event of result.events) onCallEvent(call, event);
    call.cursor = result.cursor;
    if (result.ended) endCall(call, "the call ended");
  }
}

function onCallEvent(call, event) {
  const { kind, type, data, at } = event;
  if (kind === "sent" && ((type === "prompt" && data.last !== false) || type === "dtmf")) {
    call.promptAt = at;
    call.firstAt = null;
  } else if (kind === "received" && type === "text") {
    if (!call.reply) {
      call.reply = bubble(voiceThread(), "agent", "");
      call.reply.classList.add("streaming");
      call.reply.dataset.tokens = "0";
      call.firstAt = at;
    }
    call.reply.firstChild.textContent += data.token || "";
    call.reply.dataset.tokens = String(Number(call.reply.dataset.tokens) + 1);
    voiceThread().scrollTop = voiceThread().scrollHeight;
    if (data.last) finishReply(call, at);
  } else if (kind === "received" && type === "end") {
    bubble(voiceThread(), "system", data.handoffData ? "the agent handed the call to a human (see the Flex inbox)" : "the agent ended the call");
  } else if (kind === "sent" && type === "interrupt") {
    if (call.reply) finishReply(call, at, true);
    bubble(voiceThread(), "system", `you interrupted the agent (it had said: "${data.utteranceUntilInterrupt || ""}")`);
  } else if (kind === "http") {
    const label = type === "twiml-request" ? `POST ${data.url} (TwiML)` : type === "websocket-connect" ? `WebSocket ${data.url}` :
      type === "action-callback" ? `POST ${data.url || ""} (<Connect action>)` :
      type === "twiml-response" ? "TwiML answered" : type;
    addLogRows([{ at: Date.now() / 1000, kind: "voice", label: "voice: " + label, status: data.status ?? "", ms: "" }]);
  }
}

function finishReply(call, at, interrupted = false) {
  const node = call.reply;
  call.reply = null;
  node.classList.remove("streaming");
  const first = call.promptAt !== null && call.firstAt !== null ? Math.round((call.firstAt - call.promptAt) * 1000) : null;
  const total = call.promptAt !== null ? Math.round((at - call.promptAt) * 1000) : null;
  const count = Number(node.dataset.tokens);
  const parts = [count === 1 ? "1 token" : `${count} tokens`];
  if (first !== null) parts.push(`first token ${first} ms`);
  if (total !== null) parts.push(`done ${total} ms`);
  if (interrupted) parts.push("interrupted");
  node.append(el("span", { class: "timing" }, parts.join(" · ")));
  node.dataset.done = "true";
  if (first !== null) logTurn(`voice turn: first token ${first} ms, last ${total} ms`, total);
  const text = node.firstChild.textContent;
  if (!interrupted && $("#voice-speak").checked && "speechSynthesis" in window && text) {
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = speechLanguage();
    speechSynthesis.speak(utterance);
  }
}

function endCall(call, why) {
  if (call.ended) return;
  call.ended = true;
  if (call.reply) finishReply(call, 0, true);
  bubble(voiceThread(), "system", why);
  $("#call-status").textContent = "no call";
  setCallControls(false);
  refreshMemory();
}

async function say(text) {
  const call = state.call;
  if (!call || call.ended) return;
  bubble(voiceThread(), "customer", text);
  if ("speechSynthesis" in window) speechSynthesis.cancel();
  await api("POST", `/sandbox/voice/calls/${call.sid}/say`, { text });
}

function buildVoice() {
  $("#call-start").addEventListener("click", startCall);
  $("#call-hangup").addEventListener("click", async () => {
    const call = state.call;
    if (!call) return;
    await api("POST", `/sandbox/voice/calls/${call.sid}/hangup`).catch(() => null);
    endCall(call, "you hung up");
  });
  $("#voice-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#voice-input").value.trim();
    if (!text) return;
    $("#voice-input").value = "";
    say(text).catch((error) => bubble(voiceThread(), "system", error.message));
  });
  $("#voice-interrupt").addEventListener("click", async () => {
    const call = state.call;
    if (!call) return;
    if ("speechSynthesis" in window) speechSynthesis.cancel();
    const heard = call.reply ? call.reply.firstChild.textContent : undefined;
    await api("POST", `/sandbox/voice/calls/${call.sid}/interrupt`, { utterance: heard || null }).catch(
      (error) => bubble(voiceThread(), "system", "interrupt: " + error.message));
  });
  const keypad = $("#keypad");
  for (const key of "123456789*0#") {
    const button = el("button", { type: "button", disabled: true, dataTestid: `key-${key}` }, key);
    button.addEventListener("click", async () => {
      const call = state.call;
      if (!call) return;
      bubble(voiceThread(), "customer", `pressed ${key}`);
      await api("POST", `/sandbox/voice/calls/${call.sid}/press`, { digits: key }).catch(
        (error) => bubble(voiceThread(), "system", "keypad: " + error.message));
    });
    keypad.append(button);
  }
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  if (Recognition) {
    const mic = $("#voice-mic");
    mic.hidden = false;
    mic.addEventListener("click", () => {
      const recognition = new Recognition();
      recognition.lang = speechLanguage();
      recognition.onresult = (event) => say(event.results[0][0].transcript);
      recognition.onerror = (event) => bubble(voiceThread(), "system", "speech recognition: " + event.error);
      recognition.start();
    });
  }
}

// -- tabs -----------------------------------------------------------------------------------
function buildTabs() {
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("active", other === tab);
      const channel = tab.dataset.channel;
      for (const c of CHANNELS) $(`#view-${c}`).hidden = c !== channel;
      $("#voice").hidden = channel !== "voice";
    });
  }
}

// -- memory ---------------------------------------------------------------------------------
async function findProfile() {
  const { profiles } = await api("GET", "/sandbox/memory/profiles");
  return profiles.find((p) => (p.traits.Contact || {}).phone === state.number) || null;
}

let memoryTimer = null;
function refreshMemory() {
  clearTimeout(memoryTimer);
  memoryTimer = setTimeout(() => loadMemory().catch(() => null), 150);
}

async function loadMemory() {
  const profile = await findProfile();
  state.profile = profile;
  const body = $("#traits tbody");
  body.replaceChildren();
  if (!profile) {
    $("#profile-id").textContent = "no profile yet: text the agent first";
    return;
  }
  $("#profile-id").textContent = profile.id;
  for (const [group, values] of Object.entries(profile.traits)) {
    for (const [name, value] of Object.entries(values || {})) {
      const input = el("input", { value: typeof value === "string" ? value : JSON.stringify(value), dataTestid: `trait-${group}-${name}` });
      input.addEventListener("change", () => setTrait(group, name, input.value));
      body.append(el("tr", {}, el("td", {}, `${group}.${name}`), el("td", {}, input)));
    }
  }
  const base = `/memory/v1/Stores/${CONFIG.memoryStoreId}/Profiles/${profile.id}`;
  const [observations, summaries] = await Promise.all([
    api("GET", `${base}/Observations`), api("GET", `${base}/ConversationSummaries`)]);
  fillItems($("#observations"), observations.observations || [], (o) => o.content);
  fillItems($("#summaries"), summaries.summaries || [], (s) => s.content);
}

function fillItems(list, items, text) {
  list.replaceChildren(...(items.length ? items.map((item) => el("li", {}, text(item))) : [el("li", { class: "muted" }, "none yet")]));
}

async function setTrait(group, name, value) {
  if (!state.profile) state.profile = await findProfile();
  if (!state.profile) {
    // The customer has no profile yet: make one, with the phone that identifies them.
    const created = await api("POST", `/memory/v1/Stores/${CONFIG.memoryStoreId}/Profiles`,
      { traits: { Contact: { phone: state.number }, [group]: { [name]: value } } });
    state.profile = created;
  } else {
    await api("PATCH", `/memory/v1/Stores/${CONFIG.memoryStoreId}/Profiles/${state.profile.id}`,
      { traits: { [group]: { [name]: value } } });
  }
  addLogRows([{ at: Date.now() / 1000, kind: "turn", label: `trait ${group}.${name} = ${value}`, status: "", ms: "" }]);
  await loadMemory();
}

function buildMemory() {
  $("#memory-refresh").addEventListener("click", () => loadMemory().catch(() => null));
  $("#trait-add").addEventListener("submit", (event) => {
    event.preventDefault();
    const group = $("#trait-new-group").value.trim() || "Contact";
    const name = $("#trait-new-name").value.trim();
    const value = $("#trait-new-value").value;
    if (!name) return;
    setTrait(group, name, value).then(() => {
      $("#trait-new-name").value = "";
      $("#trait-new-value").value = "";
    }).catch((error) => alert("could not set the trait: " + error.message));
  });
}

// -- Flex inbox -----------------------------------------------------------------------------
async function pollTasks() {
  for (;;) {
    try {
      const { tasks } = await api("GET", "/sandbox/flex/tasks");
      if (tasks.length !== state.tasksSeen || tasks.some((t) => !t.summary) ) renderTasks(tasks);
      state.tasksSeen = tasks.length;
    } catch (error) { /* the sandbox restarts: try again */ }
    await sleep(1500);
  }
}

function renderTasks(tasks) {
  $("#flex-count").textContent = String(tasks.length);
  if (!tasks.length) return;
  const cards = tasks.slice().reverse().map((task) => {
    const history = el("ol", {}, ...(task.history || []).map((line) =>
      el("li", {}, el("span", { class: "who" }, `${line.author || line.role || "?"}: `), line.text || "")));
    const summary = task.summary ? (task.summary.content || task.summary) : null;
    return el("div", { class: "task", dataTestid: "flex-task" },
      el("div", { class: "head" }, el("span", {}, `${(task.channel || "").toUpperCase()} · ${task.customer.address || "?"}`),
        el("span", { class: "muted" }, task.createdAt || "")),
      el("div", { class: "reason" }, "Reason: ", el("b", {}, task.reason || "(none)")),
      summary ? el("div", { class: "summary", dataTestid: "flex-summary" }, "Summary: " + (typeof summary === "string" ? summary : JSON.stringify(summary))) : null,
      el("div", { class: "muted" }, `History (${(task.history || []).length})`), history);
  });
  $("#tasks").replaceChildren(...cards);
}

// -- live log -------------------------------------------------------------------------------
function isOwn(entry) {
  if (entry.kind !== "api") return false;
  const [method, path] = entry.label.split(" ");
  return own.some((r) => r.method === method && r.path === path && Math.abs(r.at - entry.at) < 5);
}

function addLogRows(entries) {
  const body = $("#log-table tbody");
  for (const entry of entries) {
    const time = new Date(entry.at * 1000).toLocaleTimeString([], { hour12: false });
    const classes = [entry.kind, isOwn(entry) ? "own" : ""].join(" ");
    const status = entry.outcome && entry.outcome !== "delivered" ? `${entry.status ?? ""} ${entry.outcome}` : String(entry.status ?? "");
    const row = el("tr", { class: classes, dataKind: entry.kind },
      el("td", {}, time), el("td", {}, entry.label), el("td", { class: Number(entry.status) >= 400 ? "bad" : "" }, status),
      el("td", {}, entry.ms === "" || entry.ms == null ? "" : String(entry.ms)));
    body.prepend(row);
  }
  while (body.children.length > 400) body.lastChild.remove();
}

function logTurn(label, ms) {
  addLogRows([{ at: Date.now() / 1000, kind: "turn", label, status: "", ms }]);
}

async function pollLog() {
  let cursor = Date.now() / 1000 - 3600;
  for (;;) {
    try {
      const result = await api("GET", `/sandbox/console/log?after=${cursor}&wait=25`);
      addLogRows(result.entries);
      cursor = result.cursor;
    } catch (error) {
      await sleep(1000);
    }
  }
}

// -- start ----------------------------------------------------------------------------------
async function start() {
  buildThreads();
  buildTabs();
  buildVoice();
  buildMemory();
  $("#log-own").addEventListener("change", (event) => $("#log-table").classList.toggle("show-own", event.target.checked));
  $("#customer-number").addEventListener("change", (event) => {
    state.number = event.target.value.trim();
    state.email = "";
    for (const channel of CHANNELS) state.threads[channel].cursor = null;
    refreshMemory();
  });
  await chooseCustomer();
  await loadMemory().catch(() => null);
  pollTasks();
  pollLog();
  document.body.dataset.ready = "true";
}

start();
