// alphacut's page: try a cutout, watch tasks, see usage. Talks only to this API (relative URLs),
// sends the key only as x-api-key, keeps it for this tab's session unless asked to remember it.
// No data goes into innerHTML: file names, links, routes and dates become DOM text (el, svgEl).
"use strict";

const GARMENTS = ["tops", "coat", "dress", "skirt", "pants", "shoes", "bag", "hat"];
const CLASS_COLOURS = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
  [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [170, 170, 170]];
const CLASS_NAMES = ["background", ...GARMENTS, "person"];
const FINAL_STATES = new Set([1, -1, -2, -3, -5, -7, -8]);
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

// ---- key ------------------------------------------------------------------------------------------
// kept in sessionStorage (gone with the tab) unless "remember" is ticked: then in localStorage
const KEY_ITEM = "alphacut.key";
function apiKey() { return sessionStorage.getItem(KEY_ITEM) || localStorage.getItem(KEY_ITEM) || ""; }
function showKey() {
  const remembered = Boolean(localStorage.getItem(KEY_ITEM));
  $("key-status").textContent = !apiKey() ? "no key yet"
    : remembered ? "key saved in this browser" : "key kept until this tab closes";
}
$("key").value = apiKey();
$("remember-key").checked = Boolean(localStorage.getItem(KEY_ITEM));
showKey();
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  sessionStorage.removeItem(KEY_ITEM);
  localStorage.removeItem(KEY_ITEM);
  ($("remember-key").checked ? localStorage : sessionStorage).setItem(KEY_ITEM, key);
  showKey();
});

// the matting models this deployment has: the model option's values in its OpenAPI document
async function loadModels() {
  if (!apiKey()) return;
  try {
    const spec = await call("GET", "v1/openapi.json");
    const parameters = spec.paths["/v1/cutout"].post.parameters || [];
    const model = parameters.find((parameter) => parameter.name === "model");
    const names = ((model && model.schema && model.schema.enum) || []).filter((name) => name !== "isnet");
    $("model").replaceChildren(...["", ...names].map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name || "isnet (the default)";
      return option;
    }));
  } catch (_) { /* the default model only */ }
}
loadModels();
$("key-form").addEventListener("submit", loadModels);

async function call(method, path, body) {
  const response = await fetch(path, { method, body, headers: { "x-api-key": apiKey() } });
  let answer = null;
  try { answer = await response.json(); } catch (_) { answer = null; }
  if (!response.ok) {
    const error = (answer && answer.error) || {};
    const words = error.message || (answer && answer.message) || response.statusText;
    // 402: a credit-based key's balance does not cover the call; say what to do about it
    const hint = response.status === 402 ? " Top the key up: buy credits on the Billing tab, then try again." : "";
    // which of the form's fields it is about, unless the words begin with it
    const field = error.field && !String(words).startsWith(`${error.field}:`) ? ` (${error.field})` : "";
    throw new Error(`${response.status} ${error.code || ""}${field}: ${words}${hint}`.replace(" : ", ": "));
  }
  return answer;
}

// ---- tabs -----------------------------------------------------------------------------------------
for (const tab of document.querySelectorAll("button.tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("button.tab")) other.classList.toggle("active", other === tab);
    for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== `panel-${tab.dataset.tab}`;
    showError("");  // one message for the whole page: an old one does not follow to another tab
    if (tab.dataset.tab === "usage") loadUsage();
    if (tab.dataset.tab === "billing") openBilling();
  });
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
$("drop").addEventListener("drop", (event) => {
  event.preventDefault();
  $("drop").classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) pick(file, file.name);
});
document.addEventListener("paste", (event) => {
  const item = [...(event.clipboardData || {}).items || []].find((i) => i.type.startsWith("image/"));
  if (item) pick(item.getAsFile(), "pasted image");
});
for (const name of GARMENTS) {
  const label = document.createElement("label");
  label.className = "inline";
  label.append(el("input", { type: "checkbox", value: name, checked: "" }), ` ${name}`);
  $("classes").appendChild(label);
}
$("route").addEventListener("change", () => { $("classes").hidden = $("route").value !== "costume"; });

// ---- running a cutout -----------------------------------------------------------------------------
function b64Blob(entry) {
  const bytes = Uint8Array.from(atob(entry.base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: entry.content_type });
}
function objectUrl(blob) { const url = URL.createObjectURL(blob); objectUrls.push(url); return url; }

// one error line for every tab, at the top of the page, brought into view
function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
  if (message) $("error").scrollIntoView({ block: "nearest" });
}

$("try-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const route = $("route").value;
  const form = new FormData();
  if (photo) form.append("image_file", photo.blob, photo.name);
  else if ($("url").value.trim()) form.append("image_url", $("url").value.trim());
  else { showError("Pick, drop or paste a photo, or give an image URL."); return; }
  form.append("return", "base64");
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
  if (route === "costume") {
    const chosen = [...$("classes").querySelectorAll("input:checked")].map((box) => box.value);
    form.append("classes", chosen.join(",") || "all");
    form.append("output", "both");
  }
  $("result-status").textContent = "Working...";
  $("run").disabled = true;
  try {
    const answer = await call("POST", `v1/${route}`, form);
    showResult(route, answer);
  } catch (error) {
    $("result-status").textContent = "";
    $("result").hidden = true;
    showError(error.message);
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
  $("charge").textContent = String(answer.charge);
  $("remain").textContent = answer.remain === null || answer.remain === undefined ? "unlimited" : String(answer.remain);
  $("model-used").textContent = answer.model || "";
  $("check-fact").hidden = !answer.check;
  if (answer.check) {
    // each failed rule with what was measured and what the marketplace needs; advice never fails
    const failed = answer.check.rules.filter((rule) => !rule.passed && !rule.advice)
      .map((rule) => `${rule.rule} (${JSON.stringify(rule.measured)}; needs ${JSON.stringify(rule.required)})`);
    $("check").textContent = `${answer.check.preset} ${answer.check.passed ? "passed" : "failed: " + failed.join(", ")}`;
  }
  $("result-status").textContent = answer.found ? "Done." : "Done: no subject was found in this photo.";
  $("result").hidden = false;
  $("costume").hidden = route !== "costume";
  if (route === "costume") showCostume(answer);
}

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

// ---- tasks ---------------------------------------------------------------------------------------
$("tasks-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const file of $("task-files").files) {
    const row = el("tr", {}, el("td", { class: "name" }, file.name), el("td", { class: "id" }),
      el("td", { class: "state" }, "submitting"), el("td", { class: "progress" }), el("td", { class: "link" }));
    $("task-table").querySelector("tbody").appendChild(row);
    const form = new FormData();
    form.append("image_file", file, file.name);
    try {
      const answer = await call("POST", "v1/tasks", form);
      row.dataset.task = answer.data.task_id;
      row.querySelector(".id").textContent = answer.data.task_id.slice(0, 8);
      watchTask(row);
    } catch (error) {
      row.querySelector(".state").textContent = error.message;
    }
  }
});

async function watchTask(row) {
  try {
    const answer = await call("GET", `v1/tasks/${row.dataset.task}`);
    const task = answer.data;
    row.dataset.state = task.state;
    row.querySelector(".state").textContent = `${task.state}${task.message ? " " + task.message : ""}`;
    row.querySelector(".progress").textContent = `${task.progress} %`;
    if (task.state === 1 && /^https?:/.test(String(task.image))) {  // a link, never a script: URL
      row.querySelector(".link").replaceChildren(el("a", { href: task.image, target: "_blank", rel: "noopener" }, "image"));
    }
    if (!FINAL_STATES.has(task.state)) setTimeout(() => watchTask(row), 1000);
  } catch (error) {
    row.querySelector(".state").textContent = error.message;
  }
}

// ---- usage: an SVG chart drawn here ----------------------------------------------------------------
$("load-usage").addEventListener("click", loadUsage);

async function loadUsage() {
  try {
    showError("");
    const report = await call("GET", "v1/usage");
    $("usage-calls").textContent = report.total.calls;
    $("usage-charged").textContent = report.total.charged;
    $("usage-quota").textContent = report.daily_quota === null ? "none" : report.daily_quota;
    const today = new Date().toISOString().slice(0, 10);
    const todays = report.days.find((day) => day.date === today);
    $("quota-left").textContent = report.daily_quota === null ? "unlimited"
      : Math.max(report.daily_quota - (todays ? todays.calls : 0), 0);
    // a credit-based key: its balance and the credits the range used, in place of the quota
    $("credits-facts").hidden = !report.credit_based;
    $("quota-facts").hidden = report.credit_based;
    $("usage-balance").textContent = report.credit_based ? String(report.balance) : "";
    $("usage-credits").textContent = String(report.total.credits || 0);
    drawChart(everyDay(report));
    const routes = {};
    for (const day of report.days) {
      for (const [route, counts] of Object.entries(day.routes)) {
        routes[route] = routes[route] || { calls: 0, charged: 0 };
        routes[route].calls += counts.calls;
        routes[route].charged += counts.charged;
      }
    }
    $("usage-routes").querySelector("tbody").replaceChildren(...Object.entries(routes).sort()
      .map(([route, c]) => el("tr", { dataset: { route } }, el("td", {}, route), el("td", {}, String(c.calls)),
        el("td", {}, String(c.charged)))));
  } catch (error) {
    showError(error.message);
  }
}

function everyDay(report) {
  // the report lists days with calls; the chart shows each day of the range, empty ones too
  const byDate = Object.fromEntries(report.days.map((day) => [day.date, day]));
  const days = [];
  for (let t = Date.parse(report.from); t <= Date.parse(report.to); t += 86400000) {
    const date = new Date(t).toISOString().slice(0, 10);
    days.push(byDate[date] || { date, calls: 0, charged: 0 });
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
let billing = null;   // the key's settings, as GET v1/billing/settings answers
let prices = null;    // the deployment's price per credit, currency and packs (GET v1/billing/config)

function say(id, text) { $(id).textContent = text; }

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = el("script", { src });
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
    document.head.append(script);
  });
}

async function openBilling() {
  if (!apiKey()) {
    showError("No key yet: paste your API key above and Save, or get one on the Sign up tab.");
    return;
  }
  try {
    showError("");
    if (!stripe) {
      const config = await call("GET", "v1/billing/config");
      prices = config;
      await loadScript(config.stripe_js);
      stripe = window.Stripe(config.publishable_key);
      card = stripe.elements().create("card");
      card.mount("#card-element");
      $("auto-top-up").replaceChildren(el("option", { value: "" }, "nothing"),
        ...Object.entries(config.packs).map(([name, credits]) => el("option", { value: name }, `${name}: ${credits} credits for ${money(credits)}`)));
      $("buy-credits").min = String(config.min_credits);
      $("buy-credits").max = String(config.max_credits);
    }
    await loadBilling();
  } catch (error) {
    showError(error.message);
  }
}

// what some credits cost, in the deployment's currency (two-decimal currencies only)
function money(credits) {
  if (!prices || !Number.isFinite(credits)) return "";
  return `${(credits * Number(prices.price_per_credit)).toFixed(2)} ${prices.currency.toUpperCase()}`;
}
function savedCardChosen() { return Boolean(billing && billing.card_saved && $("use-saved").checked); }
// the price is on the button: what a press charges, said before it does
function showPrice() {
  const credits = Number($("buy-credits").value);
  const valid = prices && Number.isInteger(credits) && credits >= prices.min_credits && credits <= prices.max_credits;
  say("buy-price", valid ? `= ${money(credits)}` : prices ? `${prices.min_credits} to ${prices.max_credits} credits` : "");
  const how = savedCardChosen() ? "with the saved card" : "with the card above";
  $("buy").textContent = valid ? `Pay ${money(credits)} ${how}` : "Buy";
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
  $("payments").querySelector("tbody").replaceChildren(...listed.payments.map((p) => el("tr", { dataset: { payment: p.payment } },
    el("td", {}, p.at), el("td", {}, String(p.credits)), el("td", {}, `${(p.amount / 100).toFixed(2)} ${p.currency}`),
    el("td", { class: "state" }, p.state),
    el("td", {}, p.receipt_url ? el("a", { href: p.receipt_url, rel: "noopener" }, "receipt") : ""))));
  return listed;
}

function postJson(path, body) {
  return call("POST", path, new Blob([JSON.stringify(body)], { type: "application/json" }));
}

// a button that starts a payment or a card's setup stays pressed until it is over: one click, one charge
async function whileDisabled(button, work) {
  if (button.disabled) return;
  button.disabled = true;
  try { await work(); } finally { button.disabled = false; }
}

$("save-card").addEventListener("click", () => whileDisabled($("save-card"), async () => {
  try {
    showError("");
    say("billing-status", "saving the card...");
    const setup = await postJson("v1/billing/card", {});
    const result = await stripe.confirmCardSetup(setup.client_secret, { payment_method: { card } });
    if (result.error) throw new Error(result.error.message || "the card was not saved");
    await postJson("v1/billing/card", { setup_intent: result.setupIntent.id });
    say("billing-status", "card saved");
    await loadBilling();
  } catch (error) {
    say("billing-status", "");
    showError(error.message);
  }
}));

// the credits land when Stripe's webhook reaches the service: the balance is read until they show
async function waitForCredits(before, credits) {
  for (let tries = 0; tries < 40; tries += 1) {
    const listed = await loadBilling();
    if (listed.balance >= before + credits) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

$("buy").addEventListener("click", () => whileDisabled($("buy"), async () => {
  try {
    showError("");
    const credits = Number($("buy-credits").value);
    const before = billing ? billing.balance : 0;
    say("billing-status", `paying ${money(credits)}...`);
    const saved = savedCardChosen();
    const intent = await postJson("v1/billing/credits", { credits, saved_card: saved });
    if (!saved || intent.status === "requires_action") {
      const result = await stripe.confirmCardPayment(intent.client_secret, saved ? undefined : { payment_method: { card } });
      if (result.error) throw new Error(result.error.message || "the payment failed");
    }
    say("billing-status", "paid: waiting for the credits...");
    say("billing-status", (await waitForCredits(before, credits)) ? `${credits} credits added` : "paid: the credits come when Stripe confirms");
  } catch (error) {
    say("billing-status", "");
    showError(error.message);
    await loadBilling().catch(() => {});  // a payment left unconfirmed shows in the list as it is
  }
}));

$("billing-settings").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    showError("");
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
    showError(error.message);
  }
});

// ---- sign-up: a link by email, then the key shown once ---------------------------------------------
$("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    showError("");
    const answer = await fetch("v1/signup", { method: "POST", body: JSON.stringify({ email: $("signup-email").value }) });
    const body = await answer.json();
    if (!answer.ok) throw new Error(`${answer.status} ${body.error.code}: ${body.error.message}`);
    say("signup-status", `a link is on its way to ${body.email}: it works for ${body.link_minutes} minutes`);
  } catch (error) {
    say("signup-status", "");
    showError(error.message);
  }
});

const signupLink = new URLSearchParams(location.hash.slice(1));
if (signupLink.get("signup")) {
  $("tab-signup").click();
  $("signup-confirm").hidden = false;
  say("signup-for", signupLink.get("email") || "");
  $("signup-make").addEventListener("click", async () => {
    try {
      showError("");
      const answer = await fetch("v1/signup/confirm", { method: "POST",
        body: JSON.stringify({ email: signupLink.get("email"), token: signupLink.get("signup") }) });
      const body = await answer.json();
      if (!answer.ok) throw new Error(`${answer.status} ${body.error.code}: ${body.error.message}`);
      history.replaceState(null, "", location.pathname);  // the link is spent: not kept in the address
      $("signup-confirm").hidden = true;
      $("signup-key").hidden = false;
      say("signup-value", body.api_key);
      $("signup-form").hidden = true;
      // kept for this tab at once (ticking "remember" and Save keeps it in the browser)
      $("key").value = body.api_key;
      sessionStorage.setItem(KEY_ITEM, body.api_key);
      showKey();
      loadModels();
    } catch (error) {
      showError(error.message);
    }
  });
}

// the link mailed to a new notice address: the address says yes here (no key needed)
if (signupLink.get("notices")) {
  $("tab-billing").click();
  (async () => {
    try {
      const answer = await fetch("v1/billing/notices/confirm", { method: "POST",
        body: JSON.stringify({ token: signupLink.get("notices") }) });
      const body = await answer.json();
      if (!answer.ok) throw new Error(body.error ? body.error.message : answer.statusText);
      history.replaceState(null, "", location.pathname);  // spent: a reload does not post it again
      showError("");
      say("billing-status", `confirmed: the low-balance notices now go to ${body.email}`);
    } catch (error) {
      showError(`This address could not be confirmed: ${error.message}`);
    }
  })();
}
