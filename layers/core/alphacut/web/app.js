// alphacut's page: the landing view with prices, a cutout, tasks in bulk, usage, billing, keys and
// sign-up. Talks only to this API (relative URLs), sends the key only as x-api-key, keeps it for
// this tab's session unless asked to remember it.
// No data goes into innerHTML: file names, links, routes and dates become DOM text (el, svgEl).
"use strict";

const GARMENTS = ["tops", "coat", "dress", "skirt", "pants", "shoes", "bag", "hat"];
const CLASS_COLOURS = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
  [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [170, 170, 170]];
const CLASS_NAMES = ["background", ...GARMENTS, "person"];
const FINAL_STATES = new Set([1, -1, -2, -3, -5, -7, -8]);
const TASK_STATE_NAMES = { 0: "queued", 3: "waiting", 4: "processing", 1: "done" };
const $ = (id) => document.getElementById(id);
let photo = null;          // {blob, name} of the picked photo
let objectUrls = [];

// an element with properties (dataset, attributes) and children; strings become text nodes
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, String(value));
  }
  node.append(...children);
  return node;
}
function svgEl(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}
function say(id, text) { $(id).textContent = text; }
function button(label, onClick, className = "small") {
  const node = el("button", { type: "button", class: className }, label);
  node.addEventListener("click", onClick);
  return node;
}

// ---- key ------------------------------------------------------------------------------------------
// kept in sessionStorage (gone with the tab) unless "remember" is ticked: then in localStorage; its
// id beside it when the page learnt it (sign-up, the usage report), to name it on Billing and Keys
const KEY_ITEM = "alphacut.key";
const KEY_ID_ITEM = "alphacut.key_id";
function apiKey() { return sessionStorage.getItem(KEY_ITEM) || localStorage.getItem(KEY_ITEM) || ""; }
function keyStorage() { return localStorage.getItem(KEY_ITEM) ? localStorage : sessionStorage; }
function knownKeyId() { return keyStorage().getItem(KEY_ID_ITEM) || ""; }
function showKey() {
  const remembered = Boolean(localStorage.getItem(KEY_ITEM));
  $("key-status").textContent = !apiKey() ? "no key yet"
    : remembered ? "key saved in this browser" : "key kept until this tab closes";
  say("key-id", knownKeyId());
  $("key-id-fact").hidden = !knownKeyId();
}
function keepKey(key, keyId, remember) {
  for (const storage of [sessionStorage, localStorage]) {
    storage.removeItem(KEY_ITEM);
    storage.removeItem(KEY_ID_ITEM);
  }
  const storage = remember ? localStorage : sessionStorage;
  storage.setItem(KEY_ITEM, key);
  if (keyId) storage.setItem(KEY_ID_ITEM, keyId);
  $("key").value = key;
  showKey();
}
function learnKeyId(keyId) {
  if (keyId && apiKey()) keyStorage().setItem(KEY_ID_ITEM, keyId);
  showKey();
}
$("key").value = apiKey();
$("remember-key").checked = Boolean(localStorage.getItem(KEY_ITEM));
showKey();
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  const sameKey = key === apiKey();
  keepKey(key, sameKey ? knownKeyId() : "", $("remember-key").checked);
  if (openTab === "start" && key) openTabNamed("try");  // a key in hand: on to the work
  loadModels();
  loadConfig().catch(() => {});  // the deployment's own prices, said to keyed callers
});

// ---- calling the API: an error carries the answer's message and what to do next -------------------
function nextStep(status, error, retryAfter) {
  if (status === 401) return "Sign up on the Sign up tab for a key, or paste yours above and Save.";
  if (status === 402 && error.code === "key_budget_spent") {
    return "This key's daily credit limit is spent: wait until 00:00 UTC, or use a key with a higher limit (Keys tab).";
  }
  if (status === 402) return "Top the key up: buy credits on the Billing tab, then try again.";
  if (status === 403 && error.code === "insufficient_scope") {
    return `This key may not do this${error.scope ? ` (it needs the scope ${error.scope})` : ""}: use a key that may, or make one on the Keys tab.`;
  }
  if (status === 429 && error.code === "rate_limited") return `This key sends faster than its plan allows: try again ${waitWords(retryAfter)}.`;
  if (status === 429) return `Too many for now: try again ${waitWords(retryAfter)}.`;
  if (status === 503 && error.code === "billing_unavailable") return "Ask the service's operator to set up card payments.";
  if (status >= 500) return "Something failed on our side: try again in a minute.";
  if (status === 400 && error.field) return `Correct ${error.field} and try again.`;
  return "";
}

class ApiError extends Error {
  constructor(status, error, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = error.code || "";
    this.retryAfter = retryAfter === null ? null : Number(retryAfter);
  }
}

async function call(method, path, body, { keyed = true } = {}) {
  const headers = keyed && apiKey() ? { "x-api-key": apiKey() } : {};
  const response = await fetch(path, { method, body, headers });
  let answer = null;
  try { answer = await response.json(); } catch (_) { answer = null; }
  if (!response.ok) {
    const error = (answer && answer.error) || {};
    const words = error.message || (answer && answer.message) || response.statusText;
    // which of the form's fields it is about, unless the words begin with it
    const field = error.field && !String(words).startsWith(`${error.field}:`) ? ` (${error.field})` : "";
    const hint = nextStep(response.status, error, response.headers.get("Retry-After"));
    const message = `${response.status} ${error.code || ""}${field}: ${words}`.replace(" : ", ": ");
    // a rate refusal is said once, in words (its message repeats the wait); others keep the service's
    const said = response.status === 429 && error.code === "rate_limited" ? hint : hint ? `${message.replace(/\.?$/, ".")} ${hint}` : message;
    throw new ApiError(response.status, error, said, response.headers.get("Retry-After"));
  }
  return answer;
}
function postJson(path, body, options) {
  return call("POST", path, new Blob([JSON.stringify(body)], { type: "application/json" }), options);
}

// ---- tabs, and each tab's own error line ------------------------------------------------------------
// an error is said in the tab whose call failed: shown at once when it is open, kept (its tab button
// marked) until it is opened otherwise
let openTab = "try";
const tabErrors = {};
function showError(tab, message) {
  tabErrors[tab] = message;
  $(`tab-${tab}`).classList.toggle("has-error", Boolean(message) && tab !== openTab);
  if (tab === openTab) renderError();
}
function renderError() {
  const message = tabErrors[openTab] || "";
  $("error").textContent = message;
  $("error").hidden = !message;
  if (message) $("error").scrollIntoView({ block: "nearest" });
}
function openTabNamed(name) {
  openTab = name;
  for (const tab of document.querySelectorAll("button.tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== `panel-${name}`;
  $(`tab-${name}`).classList.remove("has-error");
  if (name === "try" || name === "tasks") $(`${name}-options-slot`).append($("options"));
  renderError();
  if (name === "usage") loadUsage();
  if (name === "billing") openBilling();
  if (name === "keys") loadKeys();
  if (name === "tasks" && !batch.length) loadRecentTasks();
  if (name === "start") renderPrices("start-prices");
}
for (const tab of document.querySelectorAll("button.tab")) {
  tab.addEventListener("click", () => openTabNamed(tab.dataset.tab));
}
$("start-signup").addEventListener("click", () => openTabNamed("signup"));

async function copyText(text, noteId) {
  try {
    await navigator.clipboard.writeText(text);
    say(noteId, "copied");
  } catch (_) {
    say(noteId, "the browser refused: select it and copy");
  }
}

// the matting models this deployment has: the model option's values in its OpenAPI document
async function loadModels() {
  if (!apiKey()) return;
  try {
    const spec = await call("GET", "v1/openapi.json");
    const parameters = spec.paths["/v1/cutout"].post.parameters || [];
    const model = parameters.find((parameter) => parameter.name === "model");
    const names = ((model && model.schema && model.schema.enum) || []).filter((name) => name !== "isnet");
    $("model").replaceChildren(...["", ...names].map((name) => el("option", { value: name }, name || "isnet (the default)")));
  } catch (_) { /* the default model only */ }
}

// ---- prices: the page's own (public_prices) until a key reads the deployment's config ----------------
let prices = readPublicPrices();
let configLoaded = null;  // GET v1/billing/config, once per page
function readPublicPrices() {
  try { return JSON.parse($("public-prices").textContent); } catch (_) { return null; }
}
async function loadConfig() {
  if (!apiKey()) return null;
  configLoaded = configLoaded || call("GET", "v1/billing/config").catch((error) => { configLoaded = null; throw error; });
  const config = await configLoaded;
  prices = { ...(prices || {}), ...config };  // the config has no result prices: the page's stay
  renderPrices("start-prices");
  renderPrices("billing-prices");
  return config;
}
// what some credits cost, in the deployment's currency (two-decimal currencies only)
function money(credits) {
  if (!prices || !Number.isFinite(Number(credits))) return "";
  return `${(Number(credits) * Number(prices.price_per_credit)).toFixed(2)} ${String(prices.currency).toUpperCase()}`;
}
function credits(count) { return `${count} credit${Number(count) === 1 ? "" : "s"}`; }
function resultLabel(kind) {
  const [base, model] = kind.split("@");
  const names = { full: "a full-size cutout", preview: "a preview (up to 0.25 megapixels)", costume: "a clothing (costume) call" };
  return `${names[base] || base}${model ? ` with the ${model} model` : ""}`;
}
function priceLines() {
  if (!prices) return ["Prices: ask the service's operator."];
  const lines = [`1 credit = ${money(1)}`];
  for (const [kind, cost] of Object.entries(prices.results || {})) {
    lines.push(`${resultLabel(kind)}: ${credits(cost)} (${money(cost)})`);
  }
  const packs = Object.entries(prices.packs || {});
  if (packs.length) lines.push(`packs: ${packs.map(([name, count]) => `${name} ${count} credits for ${money(count)}`).join("; ")}`);
  if (prices.min_credits) lines.push(`buy any number from ${credits(prices.min_credits)} (${money(prices.min_credits)})`);
  return lines;
}
function renderPrices(listId) {
  $(listId).replaceChildren(...priceLines().map((line) => el("li", {}, line)));
}

// ---- picking a photo ------------------------------------------------------------------------------
function pick(blob, name) {
  photo = { blob, name: name || "pasted.png" };
  $("picked").textContent = `${photo.name} (${Math.round(blob.size / 1024)} KB)`;
  $("url").value = "";
}
$("file").addEventListener("change", () => { if ($("file").files[0]) pick($("file").files[0], $("file").files[0].name); });
$("drop").addEventListener("dragover", (event) => { event.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", async (event) => {
  event.preventDefault();
  $("drop").classList.remove("over");
  const files = [...event.dataTransfer.files];
  if (files.length > 1 || (event.dataTransfer.items[0] && event.dataTransfer.items[0].webkitGetAsEntry?.()?.isDirectory)) {
    openTabNamed("tasks");  // a catalogue: each photo a task, none silently left out
    stage(await droppedFiles(event.dataTransfer));
    return;
  }
  if (files[0]) pick(files[0], files[0].name);
});
document.addEventListener("paste", (event) => {
  const item = [...(event.clipboardData || {}).items || []].find((i) => i.type.startsWith("image/"));
  if (item) pick(item.getAsFile(), "pasted image");
});
for (const name of GARMENTS) {
  const label = el("label", { class: "inline" }, el("input", { type: "checkbox", value: name, checked: "" }), ` ${name}`);
  $("classes").appendChild(label);
}
$("route").addEventListener("change", () => { $("classes").hidden = $("route").value !== "costume"; });

// ---- the options form: Try it and Tasks send the same fields --------------------------------------
function appendOptions(form, route) {
  const preset = $("preset").value;
  if (preset) form.append("preset", preset);  // the preset's own format, size and background
  else form.append("format", $("format").value);
  if ($("shadow").value !== "none") {
    form.append("shadow", $("shadow").value);
    form.append("shadow_opacity", $("shadow-opacity").value);
    form.append("shadow_angle", $("shadow-angle").value);
  }
  if ($("bg-color").value.trim()) form.append("bg_color", $("bg-color").value.trim());
  if ($("bg-image").files[0]) form.append("bg_image_file", $("bg-image").files[0], $("bg-image").files[0].name);
  if ($("crop").checked) form.append("crop", "true");
  if ($("model").value && route !== "costume") form.append("model", $("model").value);
}

// ---- running a cutout -----------------------------------------------------------------------------
function b64Bytes(base64) { return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)); }
function b64Blob(entry) { return new Blob([b64Bytes(entry.base64)], { type: entry.content_type }); }
function objectUrl(blob) { const url = URL.createObjectURL(blob); objectUrls.push(url); return url; }

// every tab says the same when there is no key yet, before any call (not the API's bare 401)
const NO_KEY = "No key yet: sign up on the Sign up tab (your key is made there), or paste your key above and Save.";
function refusedWithoutKey(tab) {
  if (apiKey()) return false;
  showError(tab, NO_KEY);
  return true;
}

$("try-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("try", "");
  if (refusedWithoutKey("try")) return;
  const route = $("route").value;
  const form = new FormData();
  if (photo) form.append("image_file", photo.blob, photo.name);
  else if ($("url").value.trim()) form.append("image_url", $("url").value.trim());
  else { showError("try", "Pick, drop or paste a photo, or give an image URL."); return; }
  form.append("return", "base64");
  appendOptions(form, route);
  if (route === "costume") {
    const chosen = [...$("classes").querySelectorAll("input:checked")].map((box) => box.value);
    form.append("classes", chosen.join(",") || "all");
    form.append("output", "both");
  }
  $("result-status").textContent = "Working...";
  $("run").disabled = true;
  try {
    showResult(route, await call("POST", `v1/${route}`, form));
  } catch (error) {
    $("result-status").textContent = "";
    $("result").hidden = true;
    showError("try", error.message);
  } finally {
    $("run").disabled = false;
  }
});

function showResult(route, answer) {
  objectUrls.forEach(URL.revokeObjectURL);
  objectUrls = [];
  const image = route === "costume" ? answer.outfit.image : answer.image;
  const blob = b64Blob(image);
  const url = objectUrl(blob);
  $("result-image").src = url;
  $("result-on-bg").src = url;
  $("after").src = url;
  $("before").src = photo ? objectUrl(photo.blob) : $("url").value.trim();
  const extension = image.content_type.split("/")[1].replace("jpeg", "jpg");
  $("download").href = url;
  $("download").download = `${(photo ? photo.name : "image").replace(/\.[^.]*$/, "")}_cutout.${extension}`;
  const mask = route === "costume" ? null : answer.mask;
  $("download-mask").hidden = !mask;
  if (mask) $("download-mask").href = objectUrl(b64Blob(mask));
  $("size").textContent = `${answer.width} x ${answer.height}, ${Math.round(blob.size / 1024)} KB`;
  $("timings").textContent = `${Math.round(answer.timings_ms.total)} ms`;
  $("charge").textContent = chargeWords(answer.charge);
  $("remain").textContent = answer.remain === null || answer.remain === undefined ? "unlimited" : String(answer.remain);
  $("model-used").textContent = answer.model || "";
  $("check-fact").hidden = !answer.check;
  if (answer.check) {
    // each failed rule in words, with what was measured and what the marketplace needs; advice never
    // fails; a pass the verdict doubts is never shown as a plain pass
    $("check").textContent = verdictWords({ check: answer.check, unsure: answer.check.unsure, reasons: answer.check.reasons, confidence: answer.confidence }).words;
  }
  const reasons = (answer.reasons || []).map((reason) => REASON_WORDS[reason] || reason.replaceAll("_", " ")).join("; ");
  $("result-status").dataset.unsure = answer.unsure ? "true" : "false";
  const doubt = answer.unsure ? ` Look at it before you publish it: ${reasons || `the service is unsure of its edges (confidence ${Number(answer.confidence).toFixed(2)})`}.` : "";
  $("result-status").textContent = (answer.found ? "Done." : "Done: no subject was found in this photo.") + doubt;
  $("result").hidden = false;
  // on a phone the result is below the options: bring it into view
  if (window.innerWidth < 700) $("result-status").scrollIntoView({ behavior: "smooth", block: "start" });
  $("costume").hidden = route !== "costume";
  if (route === "costume") showCostume(answer);
  offerTouchUp(route, answer);
}

// ---- the touch-up brush: strokes at the photo's own size, sent as refine with the result's id ------
// (the API applies them to the model's matte as kept: every stroke is sent each time; undo drops one)
let brush = { resultId: "", route: "", strokes: [], drawing: null };
function offerTouchUp(route, answer) {
  $("touch-up").hidden = route === "costume" || !answer.result_id;
  if ($("touch-up").hidden || answer.result_id === brush.resultId) return;  // a touch-up's answer keeps its strokes
  brush = { resultId: answer.result_id, route, strokes: [], drawing: null };
  say("brush-status", "");
  $("brush-photo").onload = () => {
    $("brush-canvas").width = $("brush-photo").naturalWidth;
    $("brush-canvas").height = $("brush-photo").naturalHeight;
    drawStrokes();
  };
  $("brush-photo").src = $("before").src;
}
function drawStrokes() {
  const canvas = $("brush-canvas"), context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const stroke of brush.strokes) {
    context.strokeStyle = context.fillStyle = stroke.mode === "keep" ? "#ffffff" : "#000000";
    context.lineWidth = stroke.width;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    stroke.points.forEach(([x, y], n) => (n ? context.lineTo(x, y) : context.moveTo(x, y)));
    if (stroke.points.length === 1) context.arc(stroke.points[0][0], stroke.points[0][1], stroke.width / 2, 0, 2 * Math.PI);
    stroke.points.length === 1 ? context.fill() : context.stroke();
  }
}
function photoPoint(event) {
  const canvas = $("brush-canvas"), box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}
$("brush-canvas").addEventListener("pointerdown", (event) => {
  const canvas = $("brush-canvas");
  const width = Number($("brush-size").value) * canvas.width / canvas.getBoundingClientRect().width;
  brush.drawing = { mode: $("brush-keep").checked ? "keep" : "erase", width, points: [photoPoint(event)] };
  brush.strokes.push(brush.drawing);
  canvas.setPointerCapture(event.pointerId);
  drawStrokes();
});
$("brush-canvas").addEventListener("pointermove", (event) => {
  if (!brush.drawing) return;
  brush.drawing.points.push(photoPoint(event));
  drawStrokes();
});
for (const type of ["pointerup", "pointercancel"]) $("brush-canvas").addEventListener(type, () => { brush.drawing = null; });
$("brush-undo").addEventListener("click", () => { brush.strokes.pop(); drawStrokes(); });
$("brush-apply").addEventListener("click", () => whileDisabled($("brush-apply"), async () => {
  showError("try", "");
  const strokes = await new Promise((resolve) => $("brush-canvas").toBlob(resolve, "image/png"));
  const form = new FormData();
  form.append("result_id", brush.resultId);
  form.append("refine", strokes, "strokes.png");
  form.append("return", "base64");
  appendOptions(form, brush.route);
  say("brush-status", "Applying...");
  try {
    const answer = await call("POST", `v1/${brush.route}`, form);
    showResult(brush.route, answer);
    say("brush-status", `Applied ${brush.strokes.length} stroke${brush.strokes.length === 1 ? "" : "s"}: charged ${chargeWords(answer.charge)}.`);
  } catch (error) {
    say("brush-status", "");
    showError("try", error.message);
  }
}));

// the before/after box takes the result's shape, at most 560 px wide and 480 px high: both pictures
// fill it (object-fit: contain), so they line up for a portrait, a crop or a preset alike
function fitCompare() {
  const width = $("after").naturalWidth, height = $("after").naturalHeight;
  if (!width || !height) return;
  $("compare-frame").style.aspectRatio = `${width} / ${height}`;
  $("compare").style.width = `min(560px, 100%, ${Math.round((480 * width) / height)}px)`;
}
$("after").addEventListener("load", fitCompare);
$("view-bg").addEventListener("input", () => { $("on-bg").style.background = $("view-bg").value; });
$("slider").addEventListener("input", () => {
  $("after-clip").style.clipPath = `inset(0 0 0 ${$("slider").value}%)`;
});

// ---- costume: the class map over the photo, a legend, each class's cutout ---------------------------
async function showCostume(answer) {
  $("costume-photo").src = $("before").src;
  $("legend").replaceChildren();
  for (const found of answer.classes_found) {
    const colour = CLASS_COLOURS[CLASS_NAMES.indexOf(found.class)] || [0, 0, 0];
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = `rgb(${colour.map(Number).join(",")})`;
    $("legend").append(el("li", { dataset: { class: found.class } }, swatch, String(found.class), " ",
      el("span", { class: "muted" }, `${(100 * found.share).toFixed(1)} %`)));
  }
  $("garments").replaceChildren();
  for (const entry of answer.classes.filter((e) => e.present && e.image)) {
    const image = el("img", { alt: entry.class });
    image.src = objectUrl(b64Blob(entry.image));
    $("garments").append(el("figure", {}, el("div", { class: "checker" }, image), el("figcaption", {}, String(entry.class))));
  }
  if (answer.class_map) drawClassMap(b64Blob(answer.class_map));
}

async function drawClassMap(blob) {
  const bitmap = await createImageBitmap(blob);
  const canvas = $("classmap");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    const id = pixels.data[i];
    const colour = CLASS_COLOURS[id] || [0, 0, 0];
    pixels.data.set([...colour, id === 0 ? 0 : 255], i);
  }
  context.putImageData(pixels, 0, 0);
}

// ---- tasks: a batch of photos, watched together, saved under their own names ---------------------
let batch = [];        // {file, row, taskId, state, reason, result: {blob, name}}
let polling = false;

let staged = [];       // the photos picked or dropped for the next batch, not yet submitted
let thumbUrls = [];

function taskCell(row, name) { return row.querySelector(`.${name}`); }
function addTaskRow(file, before) {
  // the photo before, its state (progress and task id under it), the result after, its verdict
  const row = el("tr", {}, el("td", { class: "name" }, el("img", { class: "thumb", src: before, alt: "" }), el("br"), file.name),
    el("td", { class: "state" }, el("span", { class: "words" }, "submitting"), " ", el("span", { class: "progress" }),
      el("br"), el("small", { class: "id muted" })),
    el("td", { class: "result" }), el("td", { class: "verdict" }));
  $("task-table").querySelector("tbody").appendChild(row);
  return { file, row, taskId: "", state: null, reason: "", result: null, task: null };
}

// ---- getting a catalogue in: files, folders (picked or dropped, nested ones too), a drop on Try it
const PHOTO_NAME = /\.(jpe?g|png|webp|gif|bmp|tiff?|heic|avif)$/i;
function isPhoto(file) { return file.type.startsWith("image/") || PHOTO_NAME.test(file.name); }
// a photo's name as the service takes it (api/task_pages.py): controls, separators, direction and
// zero-width marks and lone surrogates become spaces, at most 200 characters (the end kept)
const NAME_REFUSED = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
function taskName(file) { return (file.webkitRelativePath || file.name).replace(NAME_REFUSED, " ").slice(-200).trim(); }
// a photo is the same one picked again when its path, size and date are (the same folder twice)
function photoKey(file) { return `${file.webkitRelativePath || file.name}|${file.size}|${file.lastModified}`; }
function stage(files) {
  const photos = files.filter(isPhoto);
  const known = new Set(staged.map(photoKey));
  const fresh = photos.filter((file) => !known.has(photoKey(file)) && known.add(photoKey(file)));
  staged = staged.concat(fresh);
  showStaged(files.length - photos.length, photos.length - fresh.length);
}
function showStaged(skipped = 0, again = 0) {
  thumbUrls.forEach(URL.revokeObjectURL);
  thumbUrls = staged.map((file) => URL.createObjectURL(file));
  $("task-thumbs").replaceChildren(...staged.map((file, n) => el("li", {}, el("img", { src: thumbUrls[n], alt: file.name, title: file.name }))));
  const count = staged.length;
  const notes = [];
  if (skipped) notes.push(`${skipped} other file${skipped === 1 ? "" : "s"} left out: not photos`);
  if (again) notes.push(`${again} already picked`);
  say("task-picked", count ? `${count} photo${count === 1 ? "" : "s"} ready${notes.length ? ` (${notes.join("; ")})` : ""}` : "no photos yet");
  showBatchCost();
}
// every entry of a dropped folder, its sub-folders too (the browser reads a folder 100 entries at a time)
async function filesIn(entry) {
  if (!entry) return [];
  if (entry.isFile) return [await new Promise((resolve, reject) => entry.file(resolve, reject))];
  const reader = entry.createReader(), found = [];
  for (;;) {
    const entries = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!entries.length) return found;
    for (const child of entries) found.push(...await filesIn(child));
  }
}
async function droppedFiles(transfer) {
  const entries = [...transfer.items || []].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry());
  if (!entries.length || entries.some((entry) => !entry)) return [...transfer.files];
  return (await Promise.all(entries.map(filesIn))).flat();
}
$("task-files").addEventListener("change", () => { stage([...$("task-files").files]); $("task-files").value = ""; });
$("task-folder").addEventListener("change", () => { stage([...$("task-folder").files]); $("task-folder").value = ""; });
$("task-drop").addEventListener("dragover", (event) => { event.preventDefault(); $("task-drop").classList.add("over"); });
$("task-drop").addEventListener("dragleave", () => $("task-drop").classList.remove("over"));
$("task-drop").addEventListener("drop", async (event) => {
  event.preventDefault();
  $("task-drop").classList.remove("over");
  stage(await droppedFiles(event.dataTransfer));
});

// what the batch will cost, before it starts: its photos at the options' price, and the balance
function photoPrice() {
  const results = (prices && prices.results) || {};
  const model = $("model").value;
  return results[model ? `full@${model}` : "full"] ?? results.full;
}
async function showBatchCost() {
  const count = staged.length, each = photoPrice();
  if (!count) { say("tasks-cost", ""); return; }
  let words = each === undefined ? `${count} photos.` : `${count} photo${count === 1 ? "" : "s"} x ${credits(each)} = ${credits(count * each)}${money(count * each) ? ` (${money(count * each)})` : ""}. A photo with no subject found is not charged.`;
  say("tasks-cost", words);
  if (!apiKey()) return;
  try {
    const usage = await call("GET", "v1/usage");
    if (usage.balance !== null && usage.balance !== undefined) {
      const short = each !== undefined && usage.balance < count * each;
      words += ` Your balance: ${credits(usage.balance)}${short ? ": not enough for all of them, top it up on Billing first" : ""}.`;
    } else if (usage.daily_quota) {
      // a quota plan pays in results, never credits: the batch said in its own unit
      const today = new Date().toISOString().slice(0, 10);
      const used = ((usage.days || []).find((day) => day.date === today) || {}).charged || 0;
      const left = Math.max(usage.daily_quota - used, 0);
      words = `${count} photo${count === 1 ? "" : "s"}: ${count} of your plan's ${usage.daily_quota} results a day (${left} left today${left < count ? ": the rest waits for 00:00 UTC" : ""}). A photo with no subject found is not counted.`;
    }
    if (staged.length === count) say("tasks-cost", words);
  } catch (_) { /* the cost stands without the balance */ }
}
$("model").addEventListener("change", showBatchCost);

$("tasks-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("tasks", "");
  if (refusedWithoutKey("tasks")) return;
  if (!staged.length) { showError("tasks", "Pick or drop the photos first (several at once, or a folder)."); return; }
  $("task-table").querySelector("tbody").replaceChildren();
  batch = staged.map((file, n) => addTaskRow(file, thumbUrls[n]));
  staged = [];  // the batch holds its files (and their thumbnails): the next pick starts a new one
  thumbUrls = [];
  $("task-thumbs").replaceChildren();
  say("task-picked", "no photos yet");
  say("tasks-cost", "");
  $("tasks-summary").scrollIntoView({ block: "start" });  // on a phone the list is below the form
  await submitTasks(batch);
});
$("only-bad").addEventListener("change", showBatch);
// only photos this page still holds can be sent again (a listed task's photo is not kept)
function retriable(item) { return taskFailed(item) && item.file instanceof Blob; }
$("retry-failed").addEventListener("click", () => submitTasks(batch.filter(retriable)));
$("download-zip").addEventListener("click", downloadZip);

async function submitTasks(items) {
  showError("tasks", "");  // the last run's refusal is not this one's
  for (const item of items) await submitTask(item);
  showBatch();
  watchTasks();
}

async function submitTask(item) {
  Object.assign(item, { taskId: "", state: null, reason: "", result: null });
  item.row.dataset.state = "";
  showTask(item, "submitting");
  const form = new FormData();
  form.append("image_file", item.file, item.file.name);
  form.append("name", taskName(item.file));  // listed by it anywhere
  appendOptions(form, "cutout");
  for (let tries = 1; ; tries += 1) {
    try {
      const answer = await call("POST", "v1/tasks", form);
      item.taskId = answer.data.task_id;
      rememberName(item.taskId, item.file.name);
      forgetRefused(item.file.name);
      item.row.dataset.task = item.taskId;
      taskCell(item.row, "id").textContent = item.taskId.slice(0, 8);
      showTask(item, "queued");
      break;
    } catch (error) {
      // a batch goes at the key's own rate: a 429 for the rate waits what it says and sends again
      // (a day's quota or unpaid runs spent is said at once: waiting would take hours)
      const wait = error.retryAfter || 1;
      if (error.status === 429 && !SPENT_FOR_THE_DAY.has(error.code) && wait <= RATE_WAIT_MOST_S && tries < RATE_TRIES) {
        showTask(item, `waiting for your key's rate: sent again in ${Math.ceil(wait)} s`);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        continue;
      }
      item.reason = error.message;  // refused at submission: never became a task
      rememberRefused(item.file.name, error.message);
      showError("tasks", error.message);
      showTask(item);
      break;
    }
  }
  showBatch();
}
const SPENT_FOR_THE_DAY = new Set(["quota_exceeded", "unpaid_runs_spent"]);
const RATE_WAIT_MOST_S = 60, RATE_TRIES = 30;

function taskFailed(item) { return Boolean(item.reason); }
function taskDone(item) { return item.state === 1; }
function taskPending(item) { return !taskFailed(item) && !taskDone(item); }

function showTask(item, words) {
  const state = taskCell(item.row, "state");
  state.classList.toggle("failed", taskFailed(item));
  taskCell(state, "words").textContent = taskFailed(item) ? `failed: ${item.reason}` : words;
  if (item.result) {
    taskCell(item.row, "result").replaceChildren(el("a", { href: item.result.url, download: item.result.name },
      el("img", { class: "thumb", src: item.result.url, alt: `result of ${item.file.name}` }), el("br"), item.result.name));
  } else {
    taskCell(item.row, "result").replaceChildren();
  }
  const verdict = item.task && item.state === 1 ? verdictWords(item.task) : { bad: false, words: "" };
  item.bad = taskFailed(item) || verdict.bad;
  // a failed rule in red, a doubt in amber: they ask different things of the store
  taskCell(item.row, "verdict").replaceChildren(el("span", { class: { fail: "bad", doubt: "doubt" }[verdict.level] || "" }, verdict.words));
}

function showBatch() {
  const done = batch.filter(taskDone).length, failed = batch.filter(taskFailed).length;
  const running = batch.length - done - failed;
  const parts = [`${done} of ${batch.length} done`];
  if (failed) parts.push(`${failed} failed`);
  if (running) parts.push(`${running} running`);
  const doubtful = batch.filter((item) => item.bad && !taskFailed(item)).length;
  if (doubtful) parts.push(`${doubtful} to look at`);
  say("tasks-summary", batch.length ? parts.join(", ") : "");
  $("retry-failed").hidden = !batch.some(retriable) || running > 0;
  $("download-zip").hidden = !done;
  $("only-bad-label").hidden = !batch.length;
  const onlyBad = $("only-bad").checked;
  for (const item of batch) item.row.hidden = onlyBad && !item.bad;
}

// ---- work that stays: the key's recent tasks from the service (any device), their photos' names
// from this browser (the service keeps no file names), the options form as last used
const NAMES_ITEM = "alphacut.task_names", OPTIONS_ITEM = "alphacut.options", REFUSED_ITEM = "alphacut.refused";
// photos refused when submitted never became tasks, so the service cannot list them: this browser
// keeps them (a week, the newest 100) and lists them after a reload, until one of that name is a task
const REFUSED_KEPT_MS = 7 * 24 * 3600 * 1000;
function refusedPhotos() {
  try {
    const kept = JSON.parse(localStorage.getItem(REFUSED_ITEM)) || [];
    return kept.filter((entry) => Date.now() - entry.at < REFUSED_KEPT_MS);
  } catch (_) { return []; }
}
function rememberRefused(name, reason) {
  const kept = refusedPhotos().filter((entry) => entry.name !== name);
  kept.push({ name, reason, at: Date.now() });
  localStorage.setItem(REFUSED_ITEM, JSON.stringify(kept.slice(-100)));
}
function forgetRefused(name) {
  localStorage.setItem(REFUSED_ITEM, JSON.stringify(refusedPhotos().filter((entry) => entry.name !== name)));
}
function taskNames() { try { return JSON.parse(localStorage.getItem(NAMES_ITEM)) || {}; } catch (_) { return {}; } }
function rememberName(taskId, name) {
  const names = taskNames();
  names[taskId] = name;
  const kept = Object.entries(names).slice(-500);  // the newest 500: tasks are kept 7 days anyway
  localStorage.setItem(NAMES_ITEM, JSON.stringify(Object.fromEntries(kept)));
}
function optionWords(options) {
  // what was chosen, not every default: a preset decides the format, size and background itself
  const names = options.preset ? ["preset", "shadow", "crop", "model"] : ["format", "size", "bg_color", "shadow", "crop", "model"];
  const said = names
    .filter((name) => options[name] && !["false", "none", "auto"].includes(options[name]))
    .map((name) => `${name.replace("_", " ")} ${options[name] === "true" ? "" : options[name]}`.trim());
  return said.join(", ");
}
async function loadRecentTasks(cursor = "") {
  if (!apiKey()) return;
  try {
    const page = (await call("GET", `v1/tasks/recent?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)).data;
    if (batch.length && !cursor) return;  // a batch started meanwhile
    if (!cursor) $("task-table").querySelector("tbody").replaceChildren();
    const names = taskNames();
    for (const task of page.tasks) {
      const name = names[task.task_id] || task.name || `task ${task.task_id.slice(0, 8)}`;
      const item = addTaskRow({ name }, "");
      item.row.querySelector("td.name img").remove();  // the photo itself is not kept: its result is
      Object.assign(item, { taskId: task.task_id, state: task.state, task: task.state === 1 ? task : null });
      item.row.dataset.task = task.task_id;
      item.row.dataset.state = String(task.state);
      const when = new Date(task.created_at * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
      taskCell(item.row, "id").textContent = `${when}, ${task.task_id.slice(0, 8)}`;
      taskCell(item.row, "name").append(el("br"), el("small", { class: "muted" }, optionWords(task.options || {})));
      if (task.state < 0) item.reason = (task.error && task.error.message) || `state ${task.state}`;
      if (task.state === 1 && task.image) item.result = { url: task.image, name: name.replace(/\.[^.]*$/, "") || "result" };
      batch.push(item);
      showTask(item, TASK_STATE_NAMES[task.state] || `state ${task.state}`);
    }
    if (!cursor) {
      for (const refused of refusedPhotos().reverse()) {  // newest first, after the tasks' first page
        const item = addTaskRow({ name: refused.name }, "");
        item.row.querySelector("td.name img").remove();
        const when = new Date(refused.at).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
        taskCell(item.row, "id").textContent = `${when}, refused when sent: pick the photo again to retry`;
        item.reason = refused.reason;
        batch.push(item);
        showTask(item);
      }
    }
    showBatch();
    $("more-tasks").hidden = !page.next;
    $("more-tasks").onclick = () => loadRecentTasks(page.next);
    watchTasks();
  } catch (error) {
    showError("tasks", error.message);
  }
}
// the options as last used, in this browser
const OPTION_FIELDS = ["model", "format", "bg-color", "crop", "shadow", "shadow-opacity", "shadow-angle", "preset"];
function saveOptions() {
  const values = Object.fromEntries(OPTION_FIELDS.map((id) => [id, $(id).type === "checkbox" ? $(id).checked : $(id).value]));
  localStorage.setItem(OPTIONS_ITEM, JSON.stringify(values));
}
function restoreOptions() {
  let values = {};
  try { values = JSON.parse(localStorage.getItem(OPTIONS_ITEM)) || {}; } catch (_) { return; }
  for (const [id, value] of Object.entries(values)) {
    if (!OPTION_FIELDS.includes(id) || !$(id)) continue;
    if ($(id).type === "checkbox") $(id).checked = Boolean(value);
    else if ($(id).tagName !== "SELECT" || [...$(id).options].some((option) => option.value === value)) $(id).value = value;
  }
}
for (const id of OPTION_FIELDS) $(id).addEventListener("change", saveOptions);
restoreOptions();

// ---- a result's verdict in a store's words: the marketplace check, then the service's doubts -------
const REASON_WORDS = {
  see_through_inside: "part of the subject's inside was left see-through",
  parts_apart: "parts apart from the subject were kept",
  cut_by_frame: "the subject is cut by the photo's edge",
  little_contrast: "little contrast between the subject and its background",
  nothing_found: "no subject was found",
};
const MARKETPLACES = { amazon: "Amazon", ebay: "eBay", etsy: "Etsy", shopify: "Shopify", walmart: "Walmart", google: "Google Shopping", zalando: "Zalando" };
function list(values) { return (Array.isArray(values) ? values : [values]).join(", "); }
function percent(share, digits = 1) { return `${(Number(share) * 100).toFixed(digits).replace(/\.0+$/, "")} %`; }
// a measure and its need in as many decimals as tell them apart (84.94 % against 85 %, not "85 %")
function percents(measured, required) {
  let digits = 1;
  while (digits < 4 && percent(measured, digits) === percent(required, digits) && Number(measured) !== Number(required)) digits += 1;
  return [percent(measured, digits), percent(required, digits)];
}
function ruleWords(rule) {
  const m = rule.measured, r = rule.required;
  const said = {
    format: () => `the file is ${m}; the marketplace takes ${list(r)}`,
    background_white: () => `${m} background pixels are not pure white`,
    long_side: () => `the long side is ${m} px; it needs at least ${r} px`,
    min_size: () => `the picture is ${list(m).replace(", ", " x ")} px; it needs at least ${list(r).replace(", ", " x ")} px`,
    max_size: () => `the picture is ${list(m).replace(", ", " x ")} px; it may be at most ${list(r).replace(", ", " x ")} px`,
    file_size: () => `the file is ${Math.round(m / 1024)} KB; at most ${Math.round(r / 1024)} KB are taken`,
    cut_by_photo: () => `the product is cut by the photo's ${list(m)} edge${m.length === 1 ? "" : "s"}: it must be whole`,
    cut_by_canvas: () => `${percent(m)} of the product falls outside the picture`,
    see_through_inside: () => { const [a, b] = percents(m, r); return `${a} of the product's inside is see-through (at most ${b})`; },
    enlargement: () => `the product was enlarged ${m} times (at most ${r})`,
    fill_ratio: () => { const [a, b] = percents(m, r); return `the product fills ${a} of the picture; it needs ${b}`; },
    shadow_inside: () => "the shadow reaches the picture's edge",
    shadow_minimal: () => { const [a, b] = percents(m, r); return `the shadow covers ${a} of the picture; at most ${b} is minimal`; },
    aspect: () => `the picture's shape is ${m}; ${r} is asked for`,
  }[rule.rule];
  return said ? said() : `${rule.rule.replaceAll("_", " ")}: ${list(m)} (needs ${list(r)})`;
}
// what a call was charged, in words: the answer's charge is true/false (a quota's result) or credits
function chargeWords(charge) {
  if (charge === true) return "yes";
  if (!charge) return "nothing";
  return credits(charge);
}
// a verdict's level: "fail" (a marketplace rule fails), "doubt" (the service is unsure: look at it),
// "" (looks right); bad is either of the first two (the filter's "to look at")
function verdictWords(answer) {
  const parts = [];
  let bad = Boolean(answer.unsure), level = answer.unsure ? "doubt" : "";
  if (answer.check) {
    const preset = MARKETPLACES[answer.check.preset] || answer.check.preset;
    const failed = answer.check.rules.filter((rule) => !rule.passed && !rule.advice);
    parts.push(failed.length ? `${preset} check fails: ${failed.map(ruleWords).join("; ")}.` : `${preset} check passes.`);
    bad = bad || failed.length > 0;
    if (failed.length) level = "fail";
  }
  if (answer.unsure) {
    // a reason a failed rule has just said in its own words is not said twice
    const failedRules = new Set(answer.check ? answer.check.rules.filter((rule) => !rule.passed && !rule.advice).map((rule) => rule.rule) : []);
    const reasons = (answer.reasons || []).filter((reason) => !failedRules.has(reason)).map((reason) => REASON_WORDS[reason] || reason.replaceAll("_", " "));
    const sure = Number.isFinite(Number(answer.confidence)) && answer.confidence !== undefined ? ` (confidence ${Number(answer.confidence).toFixed(2)})` : "";
    const why = reasons.length ? reasons.join("; ") : `the service is unsure of its edges${sure}`;
    parts.push(`Look at it before you publish it: ${why}.`);
  } else if (answer.found === false) {
    parts.push("No subject was found (not charged).");
  } else if (!answer.check) {
    parts.push("Looks right.");
  }
  return { bad, level, words: parts.join(" ") };
}

// one loop for the whole batch, a poll of each unfinished task a second; the done answer carries
// the picture itself (return_type=base64): saved under the photo's own name, zipped in the page
async function watchTasks() {
  if (polling) return;
  polling = true;
  try {
    while (batch.some((item) => item.taskId && taskPending(item))) {
      for (const item of batch.filter((i) => i.taskId && taskPending(i))) await pollTask(item);
      showBatch();
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    polling = false;
  }
}

async function pollTask(item) {
  try {
    const task = (await call("GET", `v1/tasks/${item.taskId}?return_type=base64`)).data;
    item.state = task.state;
    item.row.dataset.state = String(task.state);
    taskCell(item.row, "progress").textContent = `${task.progress} %`;
    if (task.state < 0) item.reason = (task.error && task.error.message) || `state ${task.state}`;
    if (task.state === 1 && task.image) item.result = taskResult(item.file.name, task.image);
    if (task.state === 1) item.task = task;
    showTask(item, TASK_STATE_NAMES[task.state] || `state ${task.state}`);
  } catch (error) {
    // a refusal to read (too many polls, a fault on our side) is said and polled again
    if (error.status === 429) return;  // the key's rate: polled again next round, nothing to say
    if (error.status >= 500 || !error.status) showTask(item, `waiting: ${error.message}`);
    else { item.reason = error.message; showTask(item); }
  }
}

// the file's own name, its extension the result's (sniffed: png, jpg or webp), once in the batch
function taskResult(originalName, base64) {
  const bytes = b64Bytes(base64);
  const [type, extension] = sniffImage(bytes);
  const stem = originalName.replace(/\.[^.]*$/, "") || "photo";
  const taken = new Set(batch.filter((item) => item.result).map((item) => item.result.name));
  let name = `${stem}.${extension}`;
  for (let n = 2; taken.has(name); n += 1) name = `${stem} (${n}).${extension}`;
  const blob = new Blob([bytes], { type });
  return { blob, bytes, name, url: URL.createObjectURL(blob) };
}
function sniffImage(bytes) {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return ["image/png", "png"];
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return ["image/jpeg", "jpg"];
  if (bytes[8] === 0x57 && bytes[9] === 0x45) return ["image/webp", "webp"];
  return ["application/octet-stream", "bin"];
}

// the month's statement: the account's own CSV, fetched with the key and saved under its name
$("statement-month").value = new Date().toISOString().slice(0, 7);  // this month, unless the store picks one
async function downloadStatement() {
  const month = $("statement-month").value || new Date().toISOString().slice(0, 7);
  showError("billing", "");
  try {
    const response = await fetch(`v1/billing/statement?month=${encodeURIComponent(month)}`, { headers: { "x-api-key": apiKey() } });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      const error = answer.error || {};
      const hint = nextStep(response.status, error, response.headers.get("Retry-After"));
      throw new Error(`${response.status} ${error.code || ""}: ${error.message || response.statusText} ${hint || ""}`.trim());
    }
    saveBlob(await response.blob(), `alphacut-statement-${month}.csv`);
  } catch (error) {
    showError("billing", `The statement could not be fetched: ${error.message}`);
  }
}
$("download-statement").addEventListener("click", downloadStatement);

async function downloadZip() {
  const done = batch.filter((item) => taskDone(item) && item.result);
  for (const item of done.filter((i) => !i.result.bytes)) {  // a listed task's result: fetched by its link
    const bytes = new Uint8Array(await (await fetch(item.result.url)).arrayBuffer());
    const [, extension] = sniffImage(bytes);
    Object.assign(item.result, { bytes, name: `${item.result.name}.${extension}` });
  }
  saveBlob(storedZip(done.map((item) => ({ name: item.result.name, bytes: item.result.bytes }))), "cutouts.zip");
}
function saveBlob(blob, name) {
  const link = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

// ---- a zip of stored (uncompressed) entries: pictures are compressed already ------------------------
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
// little-endian fields of the given widths (2 or 4 bytes)
function fields(...pairs) {
  const size = pairs.reduce((sum, [width]) => sum + width, 0);
  const view = new DataView(new ArrayBuffer(size));
  let at = 0;
  for (const [width, value] of pairs) {
    if (width === 2) view.setUint16(at, value, true); else view.setUint32(at, value, true);
    at += width;
  }
  return view;
}
function storedZip(files) {
  const UTF8 = 0x0800, DOS_DATE = 0x21;  // names in UTF-8; every entry dated 1980-01-01
  const parts = [], central = [];
  let offset = 0;
  for (const file of files) {
    const name = new TextEncoder().encode(file.name);
    const crc = crc32(file.bytes), size = file.bytes.length;
    parts.push(fields([4, 0x04034b50], [2, 20], [2, UTF8], [2, 0], [2, 0], [2, DOS_DATE], [4, crc], [4, size],
      [4, size], [2, name.length], [2, 0]), name, file.bytes);
    central.push(fields([4, 0x02014b50], [2, 20], [2, 20], [2, UTF8], [2, 0], [2, 0], [2, DOS_DATE], [4, crc],
      [4, size], [4, size], [2, name.length], [2, 0], [2, 0], [2, 0], [2, 0], [4, 0], [4, offset]), name);
    offset += 30 + name.length + size;
  }
  const centralSize = central.reduce((sum, part) => sum + part.byteLength, 0);
  const end = fields([4, 0x06054b50], [2, 0], [2, 0], [2, files.length], [2, files.length], [4, centralSize],
    [4, offset], [2, 0]);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

// ---- usage: the store's own work apart from reads, an SVG chart drawn here ---------------------------
// account calls: usage, billing, keys, the reference and task polls, this page's and any app's; the
// rest is the store's work (cutouts, task submissions)
const READ_ROUTES = [/^\/v1\/usage/, /^\/v1\/billing/, /^\/v1\/keys/, /^\/v1\/openapi/, /^\/v1\/tasks\/\{/, /^\/v1\.0\/account/];
function isRead(route) { return READ_ROUTES.some((pattern) => pattern.test(route)); }
$("load-usage").addEventListener("click", loadUsage);

function routeTotals(report) {
  const routes = {};
  for (const day of report.days) {
    for (const [route, counts] of Object.entries(day.routes)) {
      routes[route] = routes[route] || { calls: 0, charged: 0 };
      routes[route].calls += counts.calls;
      routes[route].charged += counts.charged;
    }
  }
  return routes;
}
function workCalls(day) {
  return Object.entries(day.routes || {}).filter(([route]) => !isRead(route)).reduce((sum, [, c]) => sum + c.calls, 0);
}

async function loadUsage() {
  if (refusedWithoutKey("usage")) return;
  try {
    showError("usage", "");
    // from this month's first day, or 30 days back if that is earlier (the chart's range)
    const now = new Date(), monthStart = `${now.toISOString().slice(0, 7)}-01`;
    const thirtyBack = new Date(now.getTime() - 29 * 86400000).toISOString().slice(0, 10);
    const report = await call("GET", `v1/usage?from=${monthStart < thirtyBack ? monthStart : thirtyBack}`);
    learnKeyId(report.key_id);
    say("usage-summary", usageWords(report, monthStart));
    const routes = routeTotals(report);
    const reads = Object.entries(routes).filter(([route]) => isRead(route)).reduce((sum, [, c]) => sum + c.calls, 0);
    say("usage-work", String(report.total.calls - reads));
    say("usage-reads", String(reads));
    say("usage-charged", String(report.total.charged));
    say("usage-quota", report.daily_quota === null ? "none" : String(report.daily_quota));
    const today = new Date().toISOString().slice(0, 10);
    const todays = report.days.find((day) => day.date === today);
    // results charged today spend the quota; reads (this page's own among them) never do
    say("quota-left", report.daily_quota === null ? "unlimited"
      : String(Math.max(report.daily_quota - (todays ? todays.charged || 0 : 0), 0)));
    // a credit-based key: its balance and the credits the range used, in place of the quota
    $("credits-facts").hidden = !report.credit_based;
    $("quota-facts").hidden = report.credit_based;
    say("usage-balance", report.credit_based ? String(report.balance) : "");
    say("usage-credits", String(report.total.credits || 0));
    say("usage-money", report.credit_based && prices ? `(${money(report.total.credits || 0)})` : "");
    drawChart(everyDay(report));
    $("usage-routes").querySelector("tbody").replaceChildren(...Object.entries(routes).sort()
      .map(([route, c]) => el("tr", { dataset: { route } }, el("td", {}, route), el("td", {}, isRead(route) ? "account" : "work"),
        el("td", {}, String(c.calls)), el("td", {}, String(c.charged)))));
  } catch (error) {
    showError("usage", error.message);
  }
}

// the month in a store's words: photos and money first, what is left and about how many photos
function usageWords(report, monthStart) {
  const month = report.days.filter((day) => day.date >= monthStart);
  const photos = month.reduce((sum, day) => sum + day.charged, 0);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const name = new Date(`${monthStart}T00:00:00Z`).toLocaleString([], { month: "long", timeZone: "UTC" });
  let words = `${name}: ${plural(photos, "photo")} cut out and charged`;
  if (!report.credit_based) {
    const today = report.days.find((day) => day.date === new Date().toISOString().slice(0, 10));
    const left = report.daily_quota === null ? null : Math.max(report.daily_quota - (today ? today.charged : 0), 0);
    return `${words}.${left === null ? "" : ` Left today: ${plural(left, "result")} of your plan's ${report.daily_quota}.`}`;
  }
  const spent = Math.round(month.reduce((sum, day) => sum + Number(day.credits || 0), 0) * 1000) / 1000;
  words += `, ${credits(spent)}${money(spent) ? ` (${money(spent)})` : ""}.`;
  const each = photoPrice();
  const about = each ? `, about ${plural(Math.floor(report.balance / each), "photo")} at ${credits(each)} each` : "";
  return `${words} Left: ${credits(report.balance)}${money(report.balance) ? ` (${money(report.balance)})` : ""}${about}.`;
}

function everyDay(report) {
  // the report lists days with calls; the chart shows each day of the range, empty ones too
  const byDate = Object.fromEntries(report.days.map((day) => [day.date, day]));
  const days = [];
  for (let t = Date.parse(report.from); t <= Date.parse(report.to); t += 86400000) {
    const date = new Date(t).toISOString().slice(0, 10);
    const day = byDate[date];
    days.push({ date, calls: day ? workCalls(day) : 0, charged: day ? day.charged : 0 });
  }
  return days;
}

function drawChart(days) {
  const svg = $("usage-chart");
  const width = 760, height = 260, left = 40, bottom = 30, top = 10;
  const most = Math.max(1, ...days.map((d) => d.calls));
  const slot = (width - left - 10) / Math.max(days.length, 1);
  const y = (value) => top + (height - top - bottom) * (1 - value / most);
  const parts = [
    svgEl("line", { x1: left, y1: y(0), x2: width - 10, y2: y(0), stroke: "#999" }),
    svgEl("text", { x: 4, y: y(most) + 4, "font-size": 11 }, String(most)),
    svgEl("text", { x: 4, y: y(0), "font-size": 11 }, "0"),
  ];
  days.forEach((day, index) => {
    const x = left + index * slot + 2;
    const bar = Math.min(Math.max(slot / 2 - 1, 2), 24);
    const calls = Number(day.calls), charged = Number(day.charged), date = String(day.date);
    parts.push(
      svgEl("rect", { class: "calls", "data-date": date, "data-calls": calls, x, y: y(calls), width: bar,
        height: y(0) - y(calls), fill: "#93c5fd" }, svgEl("title", {}, `${date}: ${calls} calls`)),
      svgEl("rect", { class: "charged", "data-date": date, "data-charged": charged, x: x + bar + 1, y: y(charged),
        width: bar, height: y(0) - y(charged), fill: "#2563eb" }, svgEl("title", {}, `${date}: ${charged} charged`)));
    if (index % 5 === 0 || index === days.length - 1) {
      parts.push(svgEl("text", { x, y: height - 10, "font-size": 10 }, date.slice(5)));
    }
  });
  svg.replaceChildren(...parts);
}

// ---- billing: Stripe.js from where the deployment says (Stripe's, or a stand-in such as localstripe's)
let stripe = null;
let card = null;
let billing = null;   // the account's settings, as GET v1/billing/settings answers

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = el("script", { src });
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
    document.head.append(script);
  });
}

async function openBilling() {
  renderPrices("billing-prices");
  say("billing-key-id", knownKeyId());
  $("billing-key-fact").hidden = !knownKeyId();
  if (!apiKey()) {
    showError("billing", NO_KEY);
    return;
  }
  try {
    showError("billing", "");
    const config = await loadConfig();
    if (!stripe) await mountCard(config);
    await loadBilling();
  } catch (error) {
    showError("billing", error.message);
  }
}

async function mountCard(config) {
  await loadScript(config.stripe_js);
  stripe = window.Stripe(config.publishable_key);
  card = stripe.elements().create("card");
  card.mount("#card-element");
  $("auto-top-up").replaceChildren(el("option", { value: "" }, "nothing"),
    ...Object.entries(config.packs).map(([name, count]) => el("option", { value: name }, `${name}: ${count} credits for ${money(count)}`)));
  $("buy-credits").min = String(config.min_credits);
  $("buy-credits").max = String(config.max_credits);
}

function savedCardChosen() { return Boolean(billing && billing.card_saved && $("use-saved").checked); }
function creditsAsked() { return Number($("buy-credits").value); }
// what is wrong with the credits asked, or "" when a card may buy them
function purchaseProblem(count) {
  if (!prices || !prices.max_credits) return "";
  if (!Number.isInteger(count)) return "Credits are bought whole: give a whole number.";
  if (count < prices.min_credits) {
    return `${credits(count)} is below the smallest purchase, ${credits(prices.min_credits)} (${money(prices.min_credits)}): buy ${prices.min_credits} or more.`;
  }
  if (count > prices.max_credits) return `At most ${prices.max_credits} credits at once: buy fewer.`;
  return "";
}
// the price is on the button: what a press charges, said before it does
function showPrice() {
  const count = creditsAsked();
  const valid = prices && prices.max_credits && !purchaseProblem(count);
  say("buy-price", valid ? `= ${money(count)}` : prices && prices.max_credits ? `${prices.min_credits} to ${prices.max_credits} credits` : "");
  const how = savedCardChosen() ? "with the saved card" : "with the card above";
  $("buy").textContent = valid ? `Pay ${money(count)} ${how}` : "Buy";
  $("buy-confirm").hidden = true;  // a changed amount is confirmed again
}
$("buy-credits").addEventListener("input", showPrice);
$("use-saved").addEventListener("change", showPrice);

async function loadBilling() {
  billing = await call("GET", "v1/billing/settings");
  say("billing-balance", String(billing.balance));
  say("billing-card", billing.card_saved ? "saved" : "none saved");
  $("use-saved-label").hidden = !billing.card_saved;
  showPrice();
  $("low-balance").value = billing.low_balance === null ? "" : String(billing.low_balance);
  $("auto-top-up").value = billing.auto_top_up || "";
  $("auto-cap").value = String(billing.auto_top_up_monthly_cap);
  say("auto-cap-next", billing.auto_top_up_monthly_cap_next_month === billing.auto_top_up_monthly_cap ? ""
    : `(${billing.auto_top_up_monthly_cap_next_month} from next month)`);
  $("notify-url").value = billing.notify_url || "";
  // the address waiting for its yes is shown as the one set: saving again leaves it waiting
  $("notify-email").value = billing.email_pending || billing.email || "";
  say("notify-email-state", billing.email_pending
    ? `waiting: follow the link mailed to ${billing.email_pending}${billing.email ? ` (until then notices go to ${billing.email})` : ""}`
    : billing.email ? "confirmed" : "");
  const listed = await call("GET", "v1/billing/payments");
  say("billing-balance", String(listed.balance));  // read after the settings: the newer balance
  $("payments").querySelector("tbody").replaceChildren(...listed.payments.map(paymentRow));
  return listed;
}

const ABANDONED_AFTER_MS = 3600 * 1000;  // a payment still "created" an hour on was left unfinished
// Retry-After as a person reads it: "in 40 seconds", "in about 31 minutes"
function waitWords(retryAfter) {
  const seconds = Number(retryAfter);
  if (!seconds || Number.isNaN(seconds)) return "in a minute";
  if (seconds < 90) return `in ${Math.ceil(seconds)} second${Math.ceil(seconds) === 1 ? "" : "s"}`;
  if (seconds < 5400) return `in about ${Math.ceil(seconds / 60)} minutes`;
  return `in about ${Math.round(seconds / 3600)} hours`;
}

// what a payment's state means to the store: a PaymentIntent still "created" charged nothing
const STATE_WORDS = { created: "not paid", failed: "failed", succeeded: "paid", refunded: "refunded", disputed: "disputed", won: "dispute won", lost: "dispute lost" };
function paymentRow(payment) {
  const at = new Date(payment.at);
  const abandoned = payment.state === "created" && Date.now() - at.getTime() > ABANDONED_AFTER_MS;
  const waiting = payment.state === "created" && !abandoned;
  const why = payment.failure || (abandoned ? "never completed: nothing was charged" : "")
    || (waiting ? "waiting for the card to be confirmed: nothing charged yet" : "")
    || (payment.refunded_credits ? `${payment.refunded_credits} credits refunded` : "");
  return el("tr", { dataset: { payment: payment.payment } },
    el("td", {}, Number.isNaN(at.getTime()) ? String(payment.at) : at.toLocaleString()),
    el("td", { class: "kind" }, payment.reason === "auto" ? "automatic top-up" : "bought"),
    el("td", {}, String(payment.credits)),
    el("td", {}, `${(payment.amount / 100).toFixed(2)} ${String(payment.currency).toUpperCase()}`),
    el("td", { class: `state${payment.state === "failed" ? " failed" : ""}` }, abandoned ? "not finished" : STATE_WORDS[payment.state] || payment.state),
    el("td", { class: "why" }, why),
    el("td", {}, /^https:/.test(String(payment.receipt_url)) ? el("a", { href: payment.receipt_url, rel: "noopener", target: "_blank" }, "receipt") : ""));
}

// Stripe.js's own words for a refusal, as one sentence
function stripeWords(error) { return `${String(error.message || "refused").replace(/\.$/, "")}.`; }

// a button that starts a payment or a card's setup stays pressed until it is over: one click, one charge
async function whileDisabled(node, work) {
  if (node.disabled) return;
  node.disabled = true;
  try { await work(); } finally { node.disabled = false; }
}

$("save-card").addEventListener("click", () => whileDisabled($("save-card"), async () => {
  try {
    showError("billing", "");
    say("billing-status", "saving the card...");
    const setup = await postJson("v1/billing/card", {});
    const result = await stripe.confirmCardSetup(setup.client_secret, { payment_method: { card } });
    if (result.error) throw new Error(`The card was not saved: ${stripeWords(result.error)} Try another card.`);
    await postJson("v1/billing/card", { setup_intent: result.setupIntent.id });
    say("billing-status", "card saved");
    await loadBilling();
  } catch (error) {
    say("billing-status", "");
    showError("billing", error.message);
  }
}));

// Buy says the total and waits for a confirmation; only that confirmation pays
$("buy").addEventListener("click", () => {
  showError("billing", "");
  const count = creditsAsked();
  const problem = purchaseProblem(count);
  if (problem) { showError("billing", problem); return; }
  const how = savedCardChosen() ? "with the saved card" : "with the card above";
  say("buy-confirm-text", `Total: ${money(count)} for ${credits(count)}, paid ${how}.`);
  $("buy-confirm").hidden = false;
  $("buy-confirm").scrollIntoView({ block: "nearest" });
});
$("buy-confirm-no").addEventListener("click", () => { $("buy-confirm").hidden = true; });
$("buy-confirm-yes").addEventListener("click", () => whileDisabled($("buy-confirm-yes"), pay));

// the credits land when Stripe's webhook reaches the service: the balance is read until they show
async function waitForCredits(before, count) {
  for (let tries = 0; tries < 40; tries += 1) {
    const listed = await loadBilling();
    if (listed.balance >= before + count) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

async function pay() {
  try {
    showError("billing", "");
    const count = creditsAsked();
    const before = billing ? billing.balance : 0;
    say("billing-status", `paying ${money(count)}...`);
    const saved = savedCardChosen();
    const intent = await postJson("v1/billing/credits", { credits: count, saved_card: saved });
    if (!saved || intent.status === "requires_action") {
      const result = await stripe.confirmCardPayment(intent.client_secret, saved ? undefined : { payment_method: { card } });
      if (result.error) throw new Error(`The payment failed: ${stripeWords(result.error)} Try another card.`);
    }
    $("buy-confirm").hidden = true;
    say("billing-status", "paid: waiting for the credits...");
    say("billing-status", (await waitForCredits(before, count)) ? `${count} credits added` : "paid: the credits come when Stripe confirms");
  } catch (error) {
    say("billing-status", "");
    showError("billing", error.message);
    await loadBilling().catch(() => {});  // a payment left unconfirmed shows in the list as it is
  }
}

$("billing-settings").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    showError("billing", "");
    say("settings-status", "");
    const low = $("low-balance").value;
    const settings = {
      low_balance: low === "" ? 0 : Number(low),
      auto_top_up: $("auto-top-up").value || null,
      notify_url: $("notify-url").value.trim() || null,
    };
    if ($("auto-cap").value !== "") settings.auto_top_up_monthly_cap = Number($("auto-cap").value);
    // the email only when it changed: sent again, an address waiting for its yes would be mailed again
    const email = $("notify-email").value.trim();
    const current = billing ? billing.email_pending || billing.email || "" : "";
    if (email !== current) settings.email = email || null;
    const answer = await postJson("v1/billing/settings", settings);
    await loadBilling();
    say("settings-status", answer.email_pending && email === answer.email_pending
      ? `saved: a link is on its way to ${answer.email_pending}; notices go there once it is followed` : "saved");
  } catch (error) {
    showError("billing", error.message);
  }
});

// ---- keys: the account's keys, made, rotated and revoked here; a value is shown once ---------------
$("load-keys").addEventListener("click", loadKeys);

async function loadKeys() {
  if (!apiKey()) {
    showError("keys", "No key yet: sign up on the Sign up tab, or paste a key with the scope keys above and Save.");
    return;
  }
  try {
    showError("keys", "");
    const listed = await call("GET", "v1/keys");
    $("keys-table").querySelector("tbody").replaceChildren(...listed.keys.map(keyRow));
  } catch (error) {
    showError("keys", error.message);
  }
}

function keyRow(key) {
  const mine = key.key_id === knownKeyId();
  return el("tr", { dataset: { key: key.key_id } },
    el("td", {}, String(key.name || ""), mine ? el("span", { class: "muted" }, " (this page's)") : ""),
    el("td", {}, el("code", {}, String(key.key_id))),
    el("td", {}, key.scopes.join(", ")),
    el("td", {}, key.test ? "test" : ""),
    el("td", {}, key.daily_credit_limit === null ? "none" : String(key.daily_credit_limit)),
    el("td", {}, String(key.credits_today)),
    el("td", {}, String(key.created || "").slice(0, 10)),
    el("td", {}, String(key.last_used || "never")),
    el("td", { class: "actions" },
      button("Rotate", () => keyAction(() => rotateKey(key.key_id)), "small secondary"), " ",
      revokeButton(key.key_id, mine), " ",
      button("Callback secret", () => keyAction(() => showSecret(key.key_id, "GET")), "small secondary")));
}

// revoking asks twice: the first press names what it does, the second does it
function revokeButton(keyId, mine) {
  const node = button("Revoke", () => {
    if (!node.dataset.armed) {
      node.dataset.armed = "1";
      node.textContent = mine ? "Revoke this page's key?" : "Really revoke?";
      return;
    }
    keyAction(async () => {
      await call("DELETE", `v1/keys/${encodeURIComponent(keyId)}`);
      say("keys-status", `key ${keyId} revoked: calls with it are refused within minutes`);
    });
  }, "small danger");
  return node;
}

async function keyAction(work) {
  try {
    showError("keys", "");
    say("keys-status", "");
    await work();
    await loadKeys();
  } catch (error) {
    showError("keys", error.message);
  }
}

let shownCards = 0;
function showOnce(what, value) {
  shownCards += 1;
  const copiedId = `key-shown-copied-${shownCards}`;
  const card = el("div", { class: "shown-once" },
    el("p", {}, el("b", {}, what), ": ", el("code", { class: "value" }, value), " ",
      button("Copy", () => copyText(value, copiedId), "secondary"), " ", el("span", { id: copiedId, class: "muted" })),
    el("p", { class: "muted" }, "Shown once: keep it now, it cannot be read again (rotate the key for a new value). ",
      button("I have kept it", () => { card.remove(); $("key-shown").hidden = !$("key-shown").children.length; }, "small dismiss")));
  $("key-shown").prepend(card);
  $("key-shown").hidden = false;
  card.scrollIntoView({ block: "nearest" });
}

$("key-make").addEventListener("submit", (event) => {
  event.preventDefault();
  keyAction(async () => {
    const limit = $("new-key-limit").value.trim();
    const body = {
      name: $("new-key-name").value.trim(),
      scopes: [...$("new-key-scopes").querySelectorAll("input:checked")].map((box) => box.value),
      test: $("new-key-test").checked,
      daily_credit_limit: limit === "" ? null : Number(limit),
    };
    const made = await postJson("v1/keys", body);
    showOnce(`New ${made.test ? "test " : ""}key "${made.name}" (${made.key_id})`, made.key);
    $("key-make").reset();
  });
});

async function rotateKey(keyId) {
  const grace = Number($("rotate-grace").value);
  const made = await postJson(`v1/keys/${encodeURIComponent(keyId)}/rotate`, { grace_seconds: grace });
  // the page's own key: its new value replaces the old one here, which may stop at once
  if (keyId === knownKeyId()) keepKey(made.key, keyId, Boolean(localStorage.getItem(KEY_ITEM)));
  showOnce(`New value of "${made.name}" (${made.key_id})`, made.key);
}

async function showSecret(keyId, method) {
  const path = `v1/keys/${encodeURIComponent(keyId)}/callback-secret${method === "POST" ? "/rotate" : ""}`;
  const answer = method === "POST" ? await postJson(path, {}) : await call("GET", path);
  const note = el("span", { id: "secret-copied", class: "muted" });
  $("keys-status").replaceChildren(`callback secret of ${keyId}${method === "POST" ? " (new: the old one signs a day more)" : ""}: `,
    el("code", { id: "secret-value" }, String(answer.callback_secret)), " ",
    button("Copy", () => copyText(answer.callback_secret, "secret-copied"), "small secondary"), " ",
    button("Rotate secret", () => keyAction(() => showSecret(keyId, "POST")), "small secondary"), " ", note);
}

// ---- sign-up: a link by email, then the key shown once and kept for this tab -----------------------
$("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    showError("signup", "");
    const body = await postJson("v1/signup", { email: $("signup-email").value }, { keyed: false });
    say("signup-status", `a link is on its way to ${body.email}: it works for ${body.link_minutes} minutes`);
  } catch (error) {
    say("signup-status", "");
    showError("signup", error.message);
  }
});

function showMadeKey(made) {
  keepKey(made.api_key, made.key_id, false);  // as if pasted: kept until the tab closes
  say("signup-value", made.api_key);
  say("signup-key-id", made.key_id);
  say("signup-status", made.credits ? `${made.credits} trial credits are on your key.` : "");
  $("signup-key").hidden = false;
  $("signup-form").hidden = true;
  loadModels();
  loadConfig().catch(() => {});
}
$("signup-copy").addEventListener("click", () => copyText($("signup-value").textContent, "signup-copied"));
$("signup-buy").addEventListener("click", () => openTabNamed("billing"));
$("signup-test-key").addEventListener("click", () => {
  openTabNamed("keys");
  $("new-key-test").checked = true;
  $("new-key-name").value = "test key";
  $("new-key-name").focus();
});

// a mailed link's step: read at load and whenever the address's fragment changes (a link pasted
// into the tab that is already open)
let pageLink = new URLSearchParams(location.hash.slice(1));
function confirmSignup() {
  $("signup-confirm").hidden = false;
  say("signup-for", pageLink.get("email") || "");
}
$("signup-make").addEventListener("click", async () => {
  try {
    showError("signup", "");
    const made = await postJson("v1/signup/confirm", { email: pageLink.get("email"), token: pageLink.get("signup") }, { keyed: false });
    history.replaceState(null, "", location.pathname);  // the link is spent: not kept in the address
    $("signup-confirm").hidden = true;
    showMadeKey(made);
  } catch (error) {
    showError("signup", error.message);
  }
});
function followPageLink() {
  if (pageLink.get("signup")) {
    openTabNamed("signup");
    confirmSignup();
    return true;
  }
  if (pageLink.get("notices")) {
    openTabNamed("billing");
    confirmNotices();
    return true;
  }
  return false;
}
window.addEventListener("hashchange", () => {
  pageLink = new URLSearchParams(location.hash.slice(1));
  followPageLink();
});

// the link mailed to a new notice address: the address says yes here (no key needed)
async function confirmNotices() {
  try {
    const answer = await postJson("v1/billing/notices/confirm", { token: pageLink.get("notices") }, { keyed: false });
    history.replaceState(null, "", location.pathname);  // spent: a reload does not post it again
    showError("billing", "");
    say("billing-status", `confirmed: the low-balance notices now go to ${answer.email}`);
  } catch (error) {
    showError("billing", `This address could not be confirmed: ${error.message}`);
  }
}

// ---- on a phone each table's row is a card (app.css): every cell says its column's name ----------
function labelCells(table) {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, n) => { if (names[n]) cell.dataset.label = names[n]; });
  }
}
for (const table of document.querySelectorAll(".table-wrap table")) {
  const body = table.querySelector("tbody");
  if (body) new MutationObserver(() => labelCells(table)).observe(body, { childList: true });
}

// ---- the first view: a mailed link's step, Try it with a key, else what the service is and costs ----
$("try-options-slot").append($("options"));
renderPrices("start-prices");
if (!followPageLink()) openTabNamed(apiKey() ? "try" : "start");
loadModels();
loadConfig().catch(() => {});
