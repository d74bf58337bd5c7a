// Live regions (core/web/live.py): [data-live][id] containers refresh without a reload. The page is
// asked for its version (?live=1); only when that changed is the page fetched and the region swapped.
// No inline script (CSP); nothing loaded from elsewhere.
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser) { return; }
  document.querySelectorAll("[data-live][id]").forEach(function (box) {
    var every = Math.max(2, parseInt(box.getAttribute("data-live"), 10) || 5) * 1000;
    // data-live-src: the address (on this site) the region is read from, if not this page's.
    var src = box.getAttribute("data-live-src") || "";
    var page = (src.charAt(0) === "/" && src.charAt(1) !== "/") ? src : location.pathname + location.search;
    var check = page + (page.indexOf("?") >= 0 ? "&" : "?") + "live=1";
    var busy = false;

    function swap() {
      return fetch(page, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(box.id);
          if (!fresh) { return; }
          var focused = document.activeElement;
          if (focused && focused !== box && box.contains(focused)) { return; }  // someone works in it
          box.innerHTML = fresh.innerHTML;
          box.setAttribute("data-live-version", fresh.getAttribute("data-live-version") || "");
          box.dispatchEvent(new CustomEvent("live:updated", { bubbles: true }));
        });
    }

    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(check, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (d && String(d.v) !== box.getAttribute("data-live-version")) { return swap(); }
        })
        .catch(function () {})
        .then(function () { busy = false; });
    }

    setInterval(tick, every);
  });
})();
