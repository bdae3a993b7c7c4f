// Progress of a background job (a lead import, a connection check): asks the portal for the
// job's state every second, moves the progress bar, and reloads the page when the job ends,
// so the server renders the result. Without scripts the page offers a Refresh link.
(function () {
  "use strict";
  document.querySelectorAll("[data-job-status]").forEach(function (box) {
    var url = box.getAttribute("data-job-status");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-progress-text]");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (answer.state === "done" || answer.state === "failed") {
            window.location.reload();
            return;
          }
          if (bar && answer.total) {
            bar.max = answer.total;
            bar.value = answer.done;
            if (text) { text.textContent = answer.done + " / " + answer.total; }
          }
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 500);
  });
})();
