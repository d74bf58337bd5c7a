// Devices → Connect the Android app: notice phones that joined, without a reload (short polling).
(function () {
  "use strict";
  var box = document.getElementById("connect-steps");
  var out = document.getElementById("joined");
  if (!box || !out || !window.fetch) { return; }
  var after = box.getAttribute("data-after") || "0";
  var text = (document.getElementById("joined-text") || {}).textContent || "has joined.";
  var seen = {};
  function look() {
    fetch("/devices/connect/joined?after=" + encodeURIComponent(after), {credentials: "same-origin",
      headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {devices: []}; })
      .then(function (body) {
        (body.devices || []).forEach(function (d) {
          if (seen[d.id]) { return; }
          seen[d.id] = true;
          var p = document.createElement("p");
          p.className = "flash flash-success joined-device";
          p.setAttribute("data-device", String(d.id));
          p.textContent = d.name + " " + text;
          out.appendChild(p);
        });
      })
      .catch(function () {})
      .then(function () { window.setTimeout(look, 3000); });
  }
  window.setTimeout(look, 1000);
}());
