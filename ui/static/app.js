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
