// The operator console: going on and off line without reloading, a heartbeat every ten
// seconds (without it the engine takes the operator off line; with it, a console back from a
// lost network puts the operator back on line), and the event stream: a
// screen pop loads the lead card at once, with a sound and a notification when the tab is
// in the background. The stream reconnects by itself with Last-Event-ID, so nothing is
// missed after a dropped connection; a refused stream says why on the page. Preview dialing:
// the card of a lead comes before its call, with Call, Skip (and a reason) and the
// campaign's countdown; the engine dials only when the operator presses Call.
(function () {
  "use strict";
  var box = document.querySelector("[data-console]");
  if (!box) { return; }
  var csrf = box.getAttribute("data-csrf");
  var cardBox = document.querySelector("[data-card]");
  var label = box.querySelector("[data-state-label]");
  var since = box.querySelector("[data-state-since]");
  var notice = box.querySelector("[data-notice]");
  var onButton = box.querySelector("[data-go=on] button");
  var offForm = box.querySelector("form[data-go=off]");
  var reason = offForm.querySelector("[data-reason]");
  var breakNotice = box.querySelector("[data-break-notice]");

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body || null,
      headers: { "X-CSRFToken": csrf, Accept: "application/json" }
    }).then(function (response) { return response.json(); });
  }

  function show(state) {
    label.textContent = state.label;
    since.setAttribute("data-since", state.since || "");
    onButton.hidden = state.state !== "off_line";
    offForm.hidden = state.state === "off_line";
    if (!offForm.hidden) { reason.value = ""; } // a reason is asked each time
    breakNotice.textContent = state.notice || "";
    breakNotice.hidden = !state.notice;
    box.setAttribute("data-state", state.state);
    if (!state.lead_id) { cardBox.innerHTML = ""; }
    var wrapUp = cardBox.querySelector("form[data-wrap-up]");
    if (wrapUp) { wrapUp.hidden = state.state !== "busy"; }
    // A previewed lead dialed by its countdown: the card without Call and Skip.
    if (state.lead_id && state.state !== "previewing" && cardBox.querySelector("form[data-preview]")) {
      loadCard();
    }
  }

  function loadCard() {
    fetch(box.getAttribute("data-card-url"), { credentials: "same-origin" })
      .then(function (response) { return response.status === 200 ? response.text() : ""; })
      .then(function (html) { if (html) { cardBox.innerHTML = html; } });
  }

  function beep() {
    try {
      var audio = new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (error) { /* no sound: the card still opens */ }
  }

  // What the operator chose last: a console back from a lost network or a sleeping laptop
  // asks to be on line again if so (the portal refuses when the engine took them off line).
  var wantsOnLine = onButton.hidden;
  box.querySelectorAll("form[data-go]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      wantsOnLine = form.getAttribute("data-go") === "on";
      if (window.Notification && Notification.permission === "default") {
        Notification.requestPermission();
      }
      post(form.action, new FormData(form)).then(show);
    });
  });

  cardBox.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("[data-preview]")) {
      event.preventDefault();
      var body = new FormData(form);
      var choice = event.submitter ? event.submitter.value : "call";
      body.append("choice", choice);
      form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
      post(form.action, body).then(show, refresh);
      return;
    }
    if (form.matches("[data-wrap-up]")) {
      event.preventDefault();
      post(form.action).then(function (state) { form.remove(); show(state); });
      return;
    }
    if (!form.matches("[data-finish]")) { return; }
    event.preventDefault();
    post(form.action, new FormData(form)).then(function (state) {
      cardBox.innerHTML = "";
      notice.hidden = true;
      show(state);
      loadCallbacks();
    });
  });

  // The operator's callbacks for today, again after each Finish (it may have added one).
  function loadCallbacks() {
    var list = document.querySelector("[data-callbacks]");
    if (!list) { return; }
    fetch(list.getAttribute("data-callbacks-url"), { credentials: "same-origin" })
      .then(function (response) { return response.status === 200 ? response.text() : ""; })
      .then(function (html) {
        if (html) { document.querySelector("[data-callbacks-box]").innerHTML = html; }
      });
  }

  function refresh() {
    fetch(box.getAttribute("data-state-url"), { credentials: "same-origin" })
      .then(function (response) { return response.json(); }).then(show);
  }

  var handlers = {
    screen_pop: function () {
      loadCard();
      refresh();
      if (document.hidden) {
        beep();
        if (window.Notification && Notification.permission === "granted") {
          new Notification(label.textContent);
        }
      }
    },
    transfer_failed: function () {
      notice.textContent = box.getAttribute("data-transfer-failed");
      notice.hidden = false;
      refresh();
    },
    preview: function () {
      loadCard();
      refresh();
      if (document.hidden) { beep(); }
    },
    preview_dialing: refresh,
    preview_skipped: refresh,
    transferred: refresh,
    operator_off_line: refresh
  };

  // The event stream, read with fetch() rather than EventSource: when the portal refuses a
  // stream (this person or company has too many consoles open: 429; the server is full:
  // 503) the page shows the portal's words and tries again when the portal says
  // (Retry-After), where EventSource would stop without a word. A dropped connection is
  // opened again after a second with the last event's id (Last-Event-ID), so nothing is
  // missed.
  var eventsUrl = box.getAttribute("data-events-url");
  var refusal = box.querySelector("[data-stream-refused]");
  var lastEventId = null;

  function dispatch(frame) {
    var id = null, type = "message";
    frame.split("\n").forEach(function (line) {
      var colon = line.indexOf(":");
      if (colon <= 0) { return; } // a comment (keep-alive) or a bare field name
      var field = line.slice(0, colon), value = line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") { id = value; } else if (field === "event") { type = value; }
    });
    if (id !== null) { lastEventId = id; }
    if (handlers[type]) {
      try { handlers[type](); } catch (error) { /* the stream goes on */ }
    }
  }

  function read(reader) {
    var decoder = new TextDecoder(), buffer = "";
    function next() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { setTimeout(listen, 1000); return; }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var frames = buffer.split("\n\n");
        buffer = frames.pop();
        frames.forEach(dispatch);
        return next();
      });
    }
    // Whatever ends the reading ends the connection too: a new one must not join it.
    return next().catch(function (error) { reader.cancel(); throw error; });
  }

  function listen() {
    var headers = { Accept: "text/event-stream" };
    if (lastEventId) { headers["Last-Event-ID"] = lastEventId; }
    fetch(eventsUrl, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (response) {
        if (response.status === 429 || response.status === 503) {
          var wait = parseInt(response.headers.get("Retry-After"), 10) || 10;
          setTimeout(listen, wait * 1000);
          return response.json().then(function (answer) {
            refusal.textContent = answer.error || "";
            refusal.hidden = !answer.error;
          }, function () { /* not the portal's answer (a proxy's page): just wait */ });
        }
        var type = response.headers.get("Content-Type") || "";
        if (response.status !== 200 || !response.body || type.indexOf("text/event-stream")) {
          setTimeout(listen, 30000); // signed out, or no longer an operator: try later
          return;
        }
        refusal.hidden = true;
        return read(response.body.getReader());
      })
      .catch(function () { setTimeout(listen, 1000); }); // the network dropped
  }
  listen();

  setInterval(function () {
    if (wantsOnLine) {
      var body = new FormData();
      body.append("on_line", "1");
      post(box.getAttribute("data-heartbeat-url"), body).then(show).catch(function () {});
    }
  }, 10000);
  setInterval(function () {
    var countdown = cardBox.querySelector("[data-countdown]");
    var form = cardBox.querySelector("form[data-preview]");
    if (countdown && form) {
      var left = Math.max(0, Math.ceil(parseFloat(form.getAttribute("data-dial-at")) - Date.now() / 1000));
      countdown.textContent = countdown.getAttribute("data-countdown-text").replace("{s}", left);
    }
    var start = parseFloat(since.getAttribute("data-since"));
    if (!start) { since.textContent = ""; return; }
    var seconds = Math.max(0, Math.round(Date.now() / 1000 - start));
    since.textContent = " · " + Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }, 1000);
  if (box.querySelector("[data-card-loading]") || document.querySelector("[data-card-loading]")) {
    loadCard();
  }
  box.setAttribute("data-state", onButton.hidden ? "on_line" : "off_line");
})();
