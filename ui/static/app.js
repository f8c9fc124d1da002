// Sluice control plane: the little script the pages need beyond htmx.
// Copy buttons: <button data-copy="#element-id"> copies that element's text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without a secure context (plain HTTP on a LAN address) there is no clipboard API.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
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
// an event is two rows, a line and what opens under it.
document.addEventListener("htmx:afterSwap", (event) => {
  const list = event.detail.target;
  const keep = Number(list?.dataset?.keep);
  if (!keep) return;
  const rows = list.querySelectorAll("tr.event");
  if (rows.length) {
    document.querySelectorAll(`[data-empty-of="${list.id}"]`).forEach((note) => { note.hidden = true; });
  }
  for (let i = keep; i < rows.length; i += 1) {
    rows[i].nextElementSibling?.remove();
    rows[i].remove();
  }
});

// Code editors (<textarea data-code> after a <pre class="gutter">): line numbers beside the
// code, and Tab indents (two spaces) instead of leaving; Esc, then Tab, leaves as usual.
function numberLines(editor) {
  const gutter = editor.previousElementSibling;
  const lines = editor.value.split("\n").length;
  gutter.textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
  gutter.scrollTop = editor.scrollTop;
}
document.querySelectorAll("textarea[data-code]").forEach((editor) => {
  numberLines(editor);
  editor.addEventListener("input", () => numberLines(editor));
  editor.addEventListener("scroll", () => { editor.previousElementSibling.scrollTop = editor.scrollTop; });
  let leaving = false;
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { leaving = true; return; }
    if (event.key !== "Tab" || leaving || editor.readOnly) { leaving = false; return; }
    event.preventDefault();
    const { selectionStart: start, selectionEnd: end } = editor;
    editor.setRangeText("  ", start, end, "end");
    numberLines(editor);
  });
});
