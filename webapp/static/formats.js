// Live preview of the dial and REFER formats: asks the portal (the one implementation of
// the format language) what the SIP address would be, a moment after the admin stops typing.
(function () {
  "use strict";
  var form = document.getElementById("formats-form");
  if (!form) { return; }
  var url = form.getAttribute("data-preview-url");
  var timers = {};
  form.querySelectorAll("[data-kind]").forEach(function (input) {
    var kind = input.getAttribute("data-kind");
    var out = document.getElementById("preview-" + kind);
    input.addEventListener("input", function () {
      clearTimeout(timers[kind]);
      timers[kind] = setTimeout(function () {
        var query = "?kind=" + encodeURIComponent(kind) + "&format=" + encodeURIComponent(input.value);
        fetch(url + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) { return response.json(); })
          .then(function (answer) {
            out.textContent = answer.text || "—";
            out.classList.toggle("bad", !answer.ok);
          })
          .catch(function () { /* keep the last preview */ });
      }, 250);
    });
  });
})();
