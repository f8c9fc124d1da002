// Sluice's side of a transformation isolate: runs the user's transformEvent / transformBatch
// over a chunk of events and reports, per event, its outputs or its error and its log lines.
//
// It is loaded before the user's code and keeps its own references to what it relies on, so
// user code that replaces JSON, Array methods or its own globals cannot break the reporting:
// at worst the event at fault fails.
(function (global) {
  var parse = JSON.parse;
  var stringify = JSON.stringify;
  var isArray = Array.isArray;
  var lines = [];

  function text(value) {
    try {
      return typeof value === "string" ? value : String(stringify(value));
    } catch (e) {
      return "[unprintable]";
    }
  }
  function log() {
    var parts = [];
    for (var i = 0; i < arguments.length; i++) parts.push(text(arguments[i]));
    lines.push(parts.join(" "));
  }
  function failure(error) {
    try {
      var stack = error && error.stack;
      return typeof stack === "string" ? stack : String(error);
    } catch (e) {
      return "the transformation threw something that cannot be shown";
    }
  }
  function outputs(result) {
    if (result && typeof result.then === "function") {
      throw new Error("transformEvent returned a Promise: async transformations are not supported");
    }
    if (result === null || result === undefined) return [];
    var list = isArray(result) ? result : [result];
    var kept = [];
    for (var i = 0; i < list.length; i++) if (list[i] !== null && list[i] !== undefined) kept.push(list[i]);
    return kept;
  }
  // One event's report as JSON text; an output that cannot be serialised fails that event.
  // `batch`: made by transformBatch, whose outputs are only attributed to inputs by messageId.
  function report(events, error, logs, batch) {
    try {
      return stringify({ events: events, error: error, logs: logs, batch: batch });
    } catch (e) {
      return stringify({ events: [], error: "the transformation returned an event that is not JSON: " + failure(e), logs: logs, batch: batch });
    }
  }
  function eachEvent(items) {
    var out = [];
    for (var i = 0; i < items.length; i++) {
      lines = [];
      var item = items[i];
      try {
        var result = transformEvent(item.event, function () { return item.metadata; });
        out.push(report(outputs(result), null, lines, false));
      } catch (error) {
        out.push(report([], failure(error), lines, false));
      }
    }
    return out;
  }
  function wholeBatch(items) {
    lines = [];
    var results = [];
    var byId = new Map();
    for (var i = 0; i < items.length; i++) {
      results.push([]);
      if (!byId.has(items[i].metadata.messageId)) byId.set(items[i].metadata.messageId, i);
    }
    try {
      var metadata = function (event) {
        var at = byId.get(event && event.messageId);
        return items[at === undefined ? 0 : at].metadata;
      };
      var events = [];
      for (var j = 0; j < items.length; j++) events.push(items[j].event);
      var produced = outputs(transformBatch(events, metadata));
      // An output goes with the input of the same messageId, else with the first input.
      for (var k = 0; k < produced.length; k++) {
        var at = byId.get(produced[k] && produced[k].messageId);
        results[at === undefined ? 0 : at].push(produced[k]);
      }
    } catch (error) {
      var failed = [];
      for (var f = 0; f < items.length; f++) failed.push(report([], failure(error), lines, true));
      return failed;
    }
    var out = [];
    for (var n = 0; n < items.length; n++) out.push(report(results[n], null, n === 0 ? lines : [], true));
    return out;
  }
  var driver = Object.freeze({
    log: log,
    run: function (input) {
      var items = parse(input);
      var run = typeof transformBatch === "function" ? wholeBatch : eachEvent;
      var reports = run(items);
      var joined = "[";
      for (var r = 0; r < reports.length; r++) joined += (r ? "," : "") + reports[r];
      return joined + "]";
    },
    check: function () {
      if (typeof transformEvent !== "function" && typeof transformBatch !== "function") {
        return "the code must define transformEvent(event, metadata) or transformBatch(events, metadata)";
      }
      return "";
    },
  });
  Object.defineProperty(global, "__sluice", { value: driver, writable: false, configurable: false });
  global.log = log;
  global.console = { log: log, info: log, warn: log, error: log, debug: log };
  // No timers: code must not go on running after its call has returned. (mini-racer's are not
  // configurable, so they are replaced rather than deleted.)
  function noTimers() {
    throw new Error("timers (setTimeout, setInterval) are not available in transformations");
  }
  ["setTimeout", "clearTimeout", "setInterval", "clearInterval"].forEach(function (name) {
    if (name in global) global[name] = noTimers;
  });
  // Other ways to have code run after its call has returned: a timed wait on shared memory,
  // callbacks after garbage collection, WebAssembly's background compilation.
  if (typeof Atomics === "object") delete Atomics.waitAsync;
  delete global.FinalizationRegistry;
  delete global.WebAssembly;
})(globalThis);
