// clickagg live page: re-fetch the server-rendered fragment every few seconds and swap it in.
// Rendering stays on the server (app/dashboard_render.py, fed by clickagg.query); this only keeps the page current. On an error
// the last good numbers stay on screen and the status line says they are stale, and why, in the
// server's own words (its first sentence). A refresh period of 0 (refused parameters) means no refresh.
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var status = document.getElementById("status");
  var url = body.getAttribute("data-fragment-url") || "/dashboard/fragment";
  var every = parseInt(body.getAttribute("data-refresh-ms") || "5000", 10);
  var refreshes = 0;

  function clock() {
    return new Date().toISOString().slice(11, 19) + " UTC";
  }

  function show(text, cls) {
    status.textContent = text;
    status.className = cls;
  }

  function refresh() {
    fetch(url, { cache: "no-store" })
      .then(function (resp) {
        return resp.text().then(function (text) {
          if (!resp.ok) {
            var words = text.replace(/<[^>]*>/g, "").split(". ")[0].slice(0, 160);
            throw new Error(words || "HTTP " + resp.status);
          }
          return text;
        });
      })
      .then(function (text) {
        live.innerHTML = text;
        refreshes += 1;
        body.setAttribute("data-refreshes", String(refreshes));
        show("live · updated " + clock(), "ok");
      })
      .catch(function (err) {
        // fetch() itself rejects with a TypeError when nothing answers: the worker is gone
        var why = err instanceof TypeError ? "the worker does not answer" : err.message;
        show("stale since " + clock() + ": " + why, "stale");
      })
      .then(function () {
        setTimeout(refresh, every);
      });
  }

  if (every > 0) {
    setTimeout(refresh, every);
  }
})();
