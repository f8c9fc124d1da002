// The live list of events (/events, and a source's page): pause and resume, rows' statuses
// kept up to date, a banner while the poll fails, and an opened row kept where it is on the
// screen while new rows come in above.
(() => {
  const held = () => document.getElementById("event-held");
  const shown = () => document.getElementById("event-rows");
  const poller = () => document.getElementById("live");

  // Paused, the poll goes on but its rows go to a hidden list, counted: the poller asks for
  // what is newer than the newest row of either (its data-after), so none is fetched twice.
  function pause(button) {
    poller().setAttribute("hx-target", "#event-held");
    button.textContent = "Resume";
    poller().querySelector("[data-live-state]").textContent = "Paused";
    poller().classList.add("paused");
    count();
  }

  function resume(button) {
    const list = held();
    // The hidden list kept only its newest rows (data-keep): those shown would leave a hole.
    if (list.querySelectorAll("tr.event").length >= Number(list.dataset.keep)) {
      window.location.reload();
      return;
    }
    poller().setAttribute("hx-target", "#event-rows");
    button.textContent = "Pause";
    poller().querySelector("[data-live-state]").textContent = "Live";
    poller().classList.remove("paused");
    document.querySelector("[data-resume]").hidden = true;
    if (list.children.length) {
      const back = anchor();
      shown().prepend(...list.children);
      shown().dispatchEvent(new Event("sluice:grown", { bubbles: true })); // (app.js trims it)
      back();
    }
    window.htmx?.trigger(poller(), "poll");
  }

  function count() {
    const list = held();
    const waiting = list.querySelectorAll("tr.event").length;
    // More than it kept, or than a poll brings (its answer then ends with a gap row).
    const more = waiting >= Number(list.dataset.keep) || list.querySelector("tr.gap");
    const note = document.querySelector("[data-resume]");
    note.textContent = `${waiting}${more ? "+" : ""} new event${waiting === 1 ? "" : "s"} — resume`;
    note.hidden = false;
  }

  const paused = () => poller()?.getAttribute("hx-target") === "#event-held";

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-pause]");
    if (button) {
      if (paused()) resume(button); else pause(button);
      return;
    }
    if (event.target.closest("[data-resume]")) resume(document.querySelector("[data-pause]"));
  });

  // Rows put on top push an opened row down: the page scrolls by as much, so it stays put.
  // anchor() notes where the row is; the function it returns scrolls it back there.
  function anchor() {
    const open = shown()?.querySelector("details[open]");
    if (!open) return () => {};
    const top = open.getBoundingClientRect().top;
    return () => { if (open.isConnected) window.scrollBy(0, open.getBoundingClientRect().top - top); };
  }
  let restore = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.target?.id === "event-rows") restore = anchor();
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const id = event.detail.target?.id;
    if (id === "event-held") count();
    if (id === "event-rows" && restore) { restore(); restore = null; }
  });

  // The poll asks again for the rows whose statuses could still change (data-pending): their
  // new lines replace them in place (hx-swap-oob), what opens under them untouched.
  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt !== poller()) return;
    const rows = [...document.querySelectorAll("tr.event[data-pending]")];
    if (rows.length) event.detail.parameters.pending = rows.map((row) => `${row.dataset.tx}:${row.dataset.id}`).join(",");
  });

  // A poll that fails (no answer, or an error from the server) shows the banner its poller
  // names (data-lost) until one succeeds; the poll goes on meanwhile.
  const lost = (event, yes) => {
    const selector = event.detail.elt?.dataset?.lost;
    const banner = selector && document.querySelector(selector);
    if (banner) banner.hidden = !yes;
  };
  document.addEventListener("htmx:sendError", (event) => lost(event, true));
  document.addEventListener("htmx:responseError", (event) => lost(event, true));
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful) lost(event, false);
  });
})();
