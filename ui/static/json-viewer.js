// Sluice's JSON viewer: <pre data-json>…JSON text…</pre> becomes a tree whose objects and
// arrays fold, with a Copy button for the whole text. The page stays readable without it (the
// <pre> holds the JSON, indented). Payloads are attacker-made: the tree is built with
// textContent only, never markup. Numbers keep their text as written (no float rounding), so
// this reads JSON itself rather than with JSON.parse. Text that is not JSON is left alone.
// Content swapped in by htmx is upgraded too (htmx:load); other content, by calling
// window.sluiceJson.upgrade(element). Styles: the .jv rules in app.css.
(() => {
  const FOLD_DEEPER_THAN = 2; // levels open at first; deeper objects start folded
  const LARGEST = 200_000; // characters; a larger text (a file's bundle) stays plain text
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\.)*"/y;

  // JSON text → a tree of {kind, text | items | entries}; throws on anything else.
  function parse(source) {
    let at = 0;
    const fail = () => { throw new SyntaxError(`not JSON at ${at}`); };
    const space = () => { while (/\s/.test(source[at] ?? "")) at += 1; };
    const literal = (pattern, kind) => { // (sticky patterns: matched at `at`, nothing copied)
      pattern.lastIndex = at;
      const found = pattern.exec(source);
      if (!found) fail();
      at += found[0].length;
      return { kind, text: found[0] };
    };
    function value() {
      space();
      const c = source[at];
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"') return literal(STRING, "string");
      if (c === "t" || c === "f") return literal(/true|false/y, "boolean");
      if (c === "n") return literal(/null/y, "null");
      return literal(/-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y, "number");
    }
    function list(close, item) {
      at += 1;
      const items = [];
      space();
      if (source[at] === close) { at += 1; return items; }
      for (;;) {
        items.push(item());
        space();
        if (source[at] === close) { at += 1; return items; }
        if (source[at] !== ",") fail();
        at += 1;
      }
    }
    const array = () => ({ kind: "array", items: list("]", value) });
    const object = () => ({
      kind: "object",
      entries: list("}", () => {
        space();
        const key = literal(STRING, "key");
        space();
        if (source[at] !== ":") fail();
        at += 1;
        return [key.text, value()];
      }),
    });
    const tree = value();
    space();
    if (at !== source.length) fail();
    return tree;
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  // One value as DOM: a scalar is a span; an object or array a foldable block.
  function render(node, depth) {
    if (node.kind !== "object" && node.kind !== "array") return span(`jv-${node.kind}`, node.text);
    const object = node.kind === "object";
    const children = object ? node.entries : node.items;
    const [open, close] = object ? ["{", "}"] : ["[", "]"];
    if (!children.length) return span("jv-punct", open + close);
    const block = span("jv-block", "");
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "jv-toggle";
    toggle.textContent = open;
    const count = children.length;
    const folded = span("jv-folded", ` ${count} ${object ? "key" : "item"}${count === 1 ? "" : "s"} ${close}`);
    const body = document.createElement("div");
    body.className = "jv-body";
    children.forEach((child, index) => {
      const row = document.createElement("div");
      row.className = "jv-row";
      if (object) {
        row.append(span("jv-key", child[0]), span("jv-punct", ": "), render(child[1], depth + 1));
      } else {
        row.append(render(child, depth + 1));
      }
      if (index < count - 1) row.append(span("jv-punct", ","));
      body.append(row);
    });
    block.append(toggle, folded, body, span("jv-close", close));
    setFolded(block, depth >= FOLD_DEEPER_THAN);
    return block;
  }

  function setFolded(block, folded) {
    block.classList.toggle("jv-shut", folded);
    const toggle = block.querySelector(":scope > .jv-toggle");
    toggle.setAttribute("aria-expanded", String(!folded));
    toggle.title = folded ? "Unfold" : "Fold";
  }

  function upgrade(pre) {
    const text = pre.textContent.trim();
    let tree;
    try {
      if (text.length > LARGEST) throw new RangeError("too large to draw as a tree");
      tree = parse(text);
    } catch {
      pre.removeAttribute("data-json"); // not JSON (an HTML error page, say): shown as it is
      return;
    }
    const viewer = document.createElement("div");
    viewer.className = "jv";
    const bar = document.createElement("div");
    bar.className = "jv-bar";
    for (const [label, action] of [["Copy", "copy"], ["Fold all", "fold"], ["Unfold all", "unfold"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "small jv-action";
      button.dataset.jvAction = action;
      button.textContent = label;
      bar.append(button);
    }
    const code = document.createElement("div");
    code.className = "jv-tree";
    code.append(render(tree, 0));
    viewer.append(bar, code);
    viewer.jsonText = text;
    pre.replaceWith(viewer);
  }

  function upgradeAll(root) {
    if (root.matches?.("pre[data-json]")) upgrade(root);
    root.querySelectorAll?.("pre[data-json]").forEach(upgrade);
  }

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest(".jv-toggle, .jv-folded");
    if (toggle) {
      const block = toggle.parentElement;
      setFolded(block, !block.classList.contains("jv-shut"));
      return;
    }
    const button = event.target.closest("button[data-jv-action]");
    if (!button) return;
    const viewer = button.closest(".jv");
    const action = button.dataset.jvAction;
    if (action === "copy") window.sluiceCopy(viewer.jsonText, button); // (app.js)
    else viewer.querySelectorAll(".jv-block").forEach((block) => setFolded(block, action === "fold"));
  });
  document.addEventListener("htmx:load", (event) => upgradeAll(event.detail.elt));
  upgradeAll(document);
  window.sluiceJson = { upgrade: upgradeAll };
})();
