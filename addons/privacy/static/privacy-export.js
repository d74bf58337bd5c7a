// Data export progress on the privacy page: poll each export that is still being built and
// reload the page once one is ready (it then shows the download link). Without JS the page
// offers a refresh link. No inline script (CSP).
(function () {
  "use strict";
  var table = document.querySelector("[data-export-poll]");
  if (!table) { return; }
  var base = table.getAttribute("data-export-poll");
  function poll() {
    var rows = table.querySelectorAll("tr[data-state=queued], tr[data-state=building]");
    if (!rows.length) { return; }
    var pending = rows.length, changed = false;
    rows.forEach(function (row) {
      fetch(base + row.getAttribute("data-export"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (e) {
          if (!e) { return; }
          if (e.state !== row.getAttribute("data-state")) { changed = true; }
          row.setAttribute("data-state", e.state);
          var bar = row.querySelector("progress");
          if (bar) { bar.value = e.progress; bar.nextSibling.textContent = " " + e.progress + " %"; }
        })
        .catch(function () {})
        .then(function () {
          pending -= 1;
          if (pending === 0) {
            if (changed) { window.location.reload(); } else { window.setTimeout(poll, 1500); }
          }
        });
    });
  }
  window.setTimeout(poll, 1000);
}());
