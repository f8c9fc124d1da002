// Code editors: a <textarea data-editor="javascript|json"> becomes a CodeMirror 5 editor
// (vendored in codemirror/) with highlighting and line numbers. The textarea stays the form
// field, kept up to date on every change, so forms and htmx send it as before; without
// JavaScript it is the editor. Tab indents; Esc, then Tab, leaves the editor as usual.
//
// An error that names a line (<p data-error-for="code" data-line="3" data-column="14">) marks
// that line of that editor in the gutter, the message shown on hover.
//
// Leaving the page with the code changed and not saved asks first; saving does not.

(() => {
  const editors = new Map(); // textarea id → CodeMirror

  function enhance(textarea) {
    const before = editors.get(textarea.id);
    if (before?.getTextArea() === textarea) return;
    if (before) { // its text was replaced (another test event): errors about the old text go
      document.querySelectorAll(`[data-error-for="${textarea.id}"]`).forEach((error) => error.remove());
    }
    let leaving = false;
    const editor = window.CodeMirror.fromTextArea(textarea, {
      mode: textarea.dataset.editor === "json" ? { name: "javascript", json: true } : "javascript",
      lineNumbers: true,
      gutters: ["CodeMirror-linenumbers", "errors"],
      indentUnit: 2,
      tabSize: 2,
      readOnly: textarea.readOnly,
      viewportMargin: Infinity, // the whole text is laid out, so the page's search finds it
      extraKeys: {
        Esc: () => { leaving = true; },
        Tab: (cm) => {
          if (leaving) return window.CodeMirror.Pass;
          if (cm.somethingSelected()) cm.indentSelection("add");
          else cm.replaceSelection("  ", "end");
          return undefined;
        },
        "Shift-Tab": (cm) => (leaving ? window.CodeMirror.Pass : cm.indentSelection("subtract")),
      },
    });
    editor.on("keydown", (cm, event) => { if (event.key !== "Escape") leaving = false; });
    editor.getInputField().setAttribute("aria-label", textarea.getAttribute("aria-label"));
    editor.on("change", () => editor.save());
    editor.getWrapperElement().classList.toggle("readonly", textarea.readOnly);
    editors.set(textarea.id, editor);
  }

  // Errors mark their line: every editor's marks follow the errors now on the page.
  function markErrors() {
    editors.forEach((editor) => {
      editor.clearGutter("errors");
      for (let line = 0; line < editor.lineCount(); line += 1) {
        editor.removeLineClass(line, "background", "error-line");
      }
    });
    document.querySelectorAll("[data-error-for][data-line]").forEach((error) => {
      const editor = editors.get(error.dataset.errorFor);
      const line = Number(error.dataset.line) - 1;
      if (!editor || !(line >= 0 && line < editor.lineCount())) return;
      const mark = document.createElement("span");
      mark.className = "error-mark";
      mark.textContent = "●";
      mark.title = error.textContent.trim();
      editor.setGutterMarker(line, "errors", mark);
      editor.addLineClass(line, "background", "error-line");
    });
  }

  function setUp(root) {
    if (!window.CodeMirror) return;
    root.querySelectorAll("textarea[data-editor]").forEach(enhance);
    markErrors();
  }

  // Unsaved code: what the code editor held when the page came, unless the page itself shows
  // code that was not saved (a refused save, data-unsaved).
  const code = document.getElementById("code");
  const saved = code && !code.hasAttribute("data-unsaved") ? code.value : null;
  let saving = false;
  window.addEventListener("beforeunload", (event) => {
    if (!code || saving || code.readOnly || code.value === saved) return;
    event.preventDefault();
    event.returnValue = ""; // (what older browsers need to ask)
  });
  code?.form?.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) saving = true;
  });

  // CodeMirror hides its textarea through element.style; htmx, swapping in a new textarea of the
  // same id (another test event), would copy that as a style attribute, which the CSP refuses.
  if (window.htmx) window.htmx.config.attributesToSettle = ["class", "width", "height"];
  setUp(document);
  document.addEventListener("htmx:load", (event) => setUp(event.detail.elt));
})();
