// Segment counter for SMS text areas and live status on the messages list. No inline script (CSP).
(function () {
  "use strict";
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€\f";

  function describe(text) {
    var gsm = true, units = 0, i, c;
    for (i = 0; i < text.length; i++) {
      c = text.charAt(i);
      if (BASIC.indexOf(c) >= 0) { units += 1; } else if (EXT.indexOf(c) >= 0) { units += 2; } else { gsm = false; break; }
    }
    if (!gsm) { units = text.length; }  // UTF-16 code units, as the server counts
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var segments = units <= single ? 1 : Math.ceil(units / multi);
    return { encoding: gsm ? "GSM-7" : "UCS-2", units: units, segments: text.length ? segments : 0 };
  }

  document.querySelectorAll("[data-segment-counter]").forEach(function (area) {
    var out = document.getElementById(area.getAttribute("data-segment-counter"));
    function update() {
      var d = describe(area.value);
      out.textContent = d.units + " / " + d.encoding + " / " + d.segments + " SMS";
      out.setAttribute("data-segments", String(d.segments));
      out.setAttribute("data-encoding", d.encoding);
    }
    area.addEventListener("input", update);
    update();
  });

  var table = document.querySelector("[data-live-status]");
  if (table) {
    var url = table.getAttribute("data-live-status");
    var refresh = function () {
      var rows = table.querySelectorAll("tr[data-message]");
      var ids = [];
      rows.forEach(function (r) { ids.push(r.getAttribute("data-message")); });
      if (!ids.length) { return; }
      fetch(url + "?ids=" + ids.join(","), { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (states) {
          rows.forEach(function (r) {
            var s = states[r.getAttribute("data-message")];
            var cell = r.querySelector("[data-state]");
            if (s && cell && cell.getAttribute("data-value") !== s) {
              cell.setAttribute("data-value", s);
              cell.className = "state state-" + s;
              cell.textContent = s;
            }
          });
        }).catch(function () {});
    };
    setInterval(refresh, 3000);
  }
})();
