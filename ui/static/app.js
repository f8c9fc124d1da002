// Sluice control plane: the little script the pages need beyond htmx.
// Copying: window.sluiceCopy(text, button) puts text on the clipboard and says "Copied" on the
// button for a moment (json-viewer.js uses it too); <button data-copy="#element-id"> copies
// that element's text.
window.sluiceCopy = async (text, button) => {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without a secure context (plain HTTP on a LAN address) there is no clipboard API.
    const area = document.createElement("textarea");
    area.value = text;
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    button.focus(); // (selecting the text took the focus)
  }
  button.dataset.label ??= button.textContent; // (its own label, not "Copied" on a second click)
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = button.dataset.label; }, 1500);
};
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  const source = button && document.querySelector(button.dataset.copy);
  if (source) window.sluiceCopy(source.textContent.trim(), button);
});

// Forms that ask first: <form data-confirm="Question?"> (or its submit button with
// data-confirm) submits only when the user agrees.
document.addEventListener("submit", (event) => {
  const question = event.submitter?.dataset?.confirm ?? event.target.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// <input type="checkbox" data-select-all=".pick"> checks or clears every ".pick" box.
document.addEventListener("change", (event) => {
  const selector = event.target.dataset?.selectAll;
  if (!selector) return;
  document.querySelectorAll(selector).forEach((box) => { box.checked = event.target.checked; });
});

// Filter forms whose page shows what their URL asks for (<form data-mirror-url>): on Back or
// Forward the browser gives back what was last typed or chosen in them (its form restoring, or
// its page cache: pageshow comes after either), which the URL may no longer say; they go back to
// the values the page was drawn with, which are the URL's. (No page pushes history through htmx,
// so there is no htmx history restore to follow.)
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-mirror-url]").forEach((form) => form.reset());
});

// Parts of a page that refresh themselves (<section data-poll hx-trigger="every 5s, poll">)
// rest while the tab is hidden, and catch up as soon as it is shown again.
document.addEventListener("htmx:beforeRequest", (event) => {
  if (document.hidden && event.detail.elt.hasAttribute("data-poll")) event.preventDefault();
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden || !window.htmx) return;
  document.querySelectorAll("[data-poll]").forEach((element) => window.htmx.trigger(element, "poll"));
});

// A poller that asks for what is newer than the newest row shown (<div data-after="#list tr">):
// the first such row's data-tx and data-id, else the poller's own (nothing shown yet).
document.addEventListener("htmx:configRequest", (event) => {
  const poller = event.detail.elt;
  const selector = poller?.dataset?.after;
  if (!selector) return;
  const newest = document.querySelector(selector) ?? poller;
  event.detail.parameters.after_tx = newest.dataset.tx;
  event.detail.parameters.after_id = newest.dataset.id;
});

// Lists that grow at the top (<tbody data-keep="200">, live events) keep their newest rows:
// an event is two rows, a line and what opens under it. A poll that brought fewer than had
// arrived ends with a gap row ("more arrived meanwhile"): only the newest one is kept, as one
// says all there is to say (reload, or search). Lists grown otherwise (stream.js, on resuming)
// send "sluice:grown".
function keepNewest(list) {
  const keep = Number(list?.dataset?.keep);
  if (!keep) return;
  const rows = list.querySelectorAll("tr.event");
  if (rows.length) {
    document.querySelectorAll(`[data-empty-of="${list.id}"]`).forEach((note) => { note.hidden = true; });
  }
  for (let i = keep; i < rows.length; i += 1) {
    if (rows[i].nextElementSibling?.querySelector("details[open]")) continue; // (being read)
    rows[i].nextElementSibling?.remove();
    rows[i].remove();
  }
  list.querySelectorAll("tr.gap").forEach((gap, i) => { if (i > 0) gap.remove(); });
}
document.addEventListener("htmx:afterSwap", (event) => keepNewest(event.detail.target));
document.addEventListener("sluice:grown", (event) => keepNewest(event.target));

// The main navigation on a narrow screen: the Menu button (shown only with script, so that
// without it the links simply wrap) folds and unfolds it; Escape folds it again.
document.documentElement.classList.add("js");
document.querySelectorAll("button.menu").forEach((button) => { button.hidden = false; });
function fold(button, open) {
  button.setAttribute("aria-expanded", String(open));
  button.closest(".topbar")?.classList.toggle("open", open);
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.menu");
  if (button) fold(button, button.getAttribute("aria-expanded") !== "true");
});
document.addEventListener("keydown", (event) => {
  const button = document.querySelector("button.menu[aria-expanded='true']");
  if (event.key !== "Escape" || !button) return;
  fold(button, false);
  button.focus();
});

// An action that went wrong says so (htmx leaves the page as it was on an error answer): the
// server's own words when it answered a short plain message, else what the status means.
// Background polls (data-poll) are not actions: during an outage they would toast every few
// seconds on every page; the live stream shows its own lost state (data-lost, see stream.js).
const STATUS_MESSAGES = {
  401: "Your session has ended: sign in again.",
  403: "You do not have permission to do this.",
  404: "That is no longer there: reload the page.",
  409: "Someone changed this meanwhile: reload the page and try again.",
  413: "That is too large to send.",
  429: "Too many tries: wait a moment and try again.",
  503: "The service is unavailable just now: try again shortly.",
};
function toast(text) {
  const region = document.getElementById("toast");
  if (!region) return;
  region.querySelector("p").textContent = text;
  region.hidden = false;
}
function answered(xhr) {
  const plain = (xhr.getResponseHeader("content-type") || "").startsWith("text/plain");
  const text = (xhr.responseText || "").trim();
  if (plain && text && text.length <= 300) return text;
  return STATUS_MESSAGES[xhr.status] || `The server could not do this (error ${xhr.status}).`;
}
const polled = (event) => event.detail.elt?.hasAttribute("data-poll");
document.addEventListener("htmx:responseError", (event) => {
  if (!polled(event)) toast(answered(event.detail.xhr));
});
document.addEventListener("htmx:sendError", (event) => {
  if (!polled(event)) toast("The server could not be reached: check your connection and try again.");
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-dismiss]");
  const target = button && document.querySelector(button.dataset.dismiss);
  if (target) target.hidden = true;
});

// The destination catalog's search (<input data-search=".typecard">): cards whose data-text
// lacks a typed word are hidden as one types, and groups left empty; without JavaScript the
// form's ?q= asks the server for the same.
document.addEventListener("input", (event) => {
  const selector = event.target.dataset?.search;
  if (!selector) return;
  const words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  document.querySelectorAll(selector).forEach((card) => {
    card.hidden = !words.every((word) => card.dataset.text.includes(word));
    if (!card.hidden) shown += 1;
  });
  document.querySelectorAll(".catalog-group").forEach((group) => {
    group.hidden = !group.querySelector(".typecard:not([hidden])");
  });
  const none = document.getElementById("catalog-none");
  if (none) none.hidden = shown > 0;
});

// Tables of rows in settings forms (.rows-editor): "Add row" appends an empty copy of the last
// row; "Remove" takes a row out (the only one left is emptied instead, to stay there to fill).
document.addEventListener("click", (event) => {
  const add = event.target.closest("button[data-add-row]");
  if (add) {
    const body = add.closest(".rows-editor").querySelector("tbody");
    const row = body.lastElementChild.cloneNode(true);
    row.querySelectorAll("input").forEach((input) => { input.value = ""; });
    body.append(row);
    row.querySelector("input")?.focus();
    return;
  }
  const remove = event.target.closest("button[data-remove-row]");
  if (!remove) return;
  const row = remove.closest("tr");
  if (row.parentElement.children.length > 1) row.remove();
  else row.querySelectorAll("input").forEach((input) => { input.value = ""; });
});

// A link to a form field (<a href="#new-source">, a call to action) puts the cursor in it.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='#']");
  const field = link && document.getElementById(link.getAttribute("href").slice(1));
  if (field?.matches("input, select, textarea")) { event.preventDefault(); field.focus(); }
});
