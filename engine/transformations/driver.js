// Sluice's side of a transformation isolate: runs the user's transformEvent / transformBatch
// over a chunk of events and reports, per event, its outputs or its error and its log lines.
var __sluice = (function () {
  var lines = [];
  function text(value) {
    if (typeof value === "string") return value;
    try { return JSON.stringify(value); } catch (e) { return String(value); }
  }
  function log() {
    lines.push(Array.prototype.map.call(arguments, text).join(" "));
  }
  function outputs(result) {
    if (result === null || result === undefined) return [];
    return Array.isArray(result) ? result.filter(function (e) { return e != null; }) : [result];
  }
  function failure(error) {
    if (error && error.stack) return String(error.stack);
    return String(error);
  }
  function eachEvent(items) {
    return items.map(function (item) {
      lines = [];
      try {
        var result = transformEvent(item.event, function () { return item.metadata; });
        return { events: outputs(result), logs: lines };
      } catch (error) {
        return { error: failure(error), logs: lines };
      }
    });
  }
  function wholeBatch(items) {
    lines = [];
    var byId = {};
    var results = items.map(function (item) {
      byId[item.metadata.messageId] = byId[item.metadata.messageId] || { events: [] };
      return byId[item.metadata.messageId];
    });
    try {
      var metadata = function (event) {
        var id = event && event.messageId;
        for (var i = 0; i < items.length; i++) {
          if (items[i].metadata.messageId === id) return items[i].metadata;
        }
        return items[0].metadata;
      };
      outputs(transformBatch(items.map(function (i) { return i.event; }), metadata))
        .forEach(function (event) {
          // An output goes with the input of the same messageId, else with the first input.
          (byId[event && event.messageId] || results[0]).events.push(event);
        });
    } catch (error) {
      return items.map(function () { return { error: failure(error), logs: lines }; });
    }
    results.forEach(function (r) { r.logs = lines; });
    return results;
  }
  return {
    log: log,
    run: function (input) {
      var items = JSON.parse(input);
      var run = typeof transformBatch === "function" ? wholeBatch : eachEvent;
      return JSON.stringify(run(items));
    },
    check: function () {
      if (typeof transformEvent !== "function" && typeof transformBatch !== "function") {
        return "the code must define transformEvent(event, metadata) or transformBatch(events, metadata)";
      }
      return "";
    },
  };
})();
var log = __sluice.log;
console.log = __sluice.log;
console.info = __sluice.log;
console.warn = __sluice.log;
console.error = __sluice.log;
