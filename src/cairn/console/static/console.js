// cairn console: the only script. A running job's log follows itself (polling the
// server's text of it every 2 s until the job ends); nothing else needs JavaScript.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !log.dataset.live) return;
  function poll() {
    fetch(log.dataset.src, { credentials: "same-origin" })
      .then(function (r) {
        var state = r.headers.get("x-cairn-job-state");
        return r.text().then(function (text) {
          var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.textContent = text || "no log yet";
          if (atEnd) log.scrollTop = log.scrollHeight;
          if (state === "running") setTimeout(poll, 2000);
          else log.dataset.live = "";
        });
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
