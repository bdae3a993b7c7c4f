// The live wall: asks the portal for the tenant's live state every two seconds and updates
// the counters and the operators' table in place. Without scripts, reloading does the same.
(function () {
  "use strict";
  var box = document.querySelector("[data-live]");
  if (!box) { return; }
  var rows = document.querySelector("[data-operators]");
  function text(cell, value) { cell.textContent = value === null || value === undefined ? "" : value; }
  function clock(seconds) {
    return seconds === null ? "" : Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }
  function counters(into, values) {
    Object.keys(values).forEach(function (name) {
      var cell = into.querySelector('[data-count="' + name + '"]');
      if (!cell) { return; }
      var value = values[name];
      text(cell, name === "abandon_rate" ? (value === null ? "—" : value.toFixed(1) + " %") : value);
    });
  }
  function update(state) {
    counters(box, state.today);
    // Each campaign's row, when the wall shows every campaign (a new campaign: reload).
    (state.by_campaign || []).forEach(function (row) {
      var line = document.querySelector('[data-campaigns] [data-campaign="' + row.id + '"]');
      if (line) { counters(line, row); }
    });
    text(box.querySelector("[data-engine]"), state.engine_text);
    var warning = box.querySelector("[data-warning]");
    warning.hidden = !state.engine.warning;
    text(warning, state.engine.warning);
    state.operators.forEach(function (op) {
      var row = rows.querySelector('[data-operator="' + op.id + '"]');
      if (!row) { return; }
      var cells = row.querySelectorAll("td");
      text(cells[2], op.state_label + (op.why ? " · " + op.why : ""));
      text(cells[3], clock(op.seconds));
      text(cells[4], op.lead);
      var takeOff = row.querySelector("form[data-take-off]");
      if (takeOff) { takeOff.hidden = op.state === "off_line"; }
    });
  }
  function poll() {
    fetch(box.getAttribute("data-live"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(update)
      .catch(function () {})
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
