// Tables become cards on phones (app.css, table.stacked): each cell gets its column's header as
// data-label, shown above the value. Rows added later (live lists) are labelled as they arrive.
// Without this script a table keeps its shape and scrolls inside its own box.
(function () {
  "use strict";
  function label(table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    // A table whose template labels its cells itself also lays them out itself (privacy's sign-ins).
    if (!head || (!table.classList.contains("stacked") && table.querySelector("td[data-label]"))) { return; }
    var names = Array.prototype.map.call(head.cells, function (c) { return c.textContent.trim(); });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          if (!cell.hasAttribute("data-label") && names[column]) { cell.setAttribute("data-label", names[column]); }
          column += cell.colSpan || 1;
        });
      });
    });
    table.classList.add("stacked");
  }
  function labelAll(root) {
    Array.prototype.forEach.call(root.querySelectorAll("main table"), label);
  }
  document.addEventListener("DOMContentLoaded", function () {
    labelAll(document);
    var main = document.querySelector("main");
    if (main && window.MutationObserver) {
      new MutationObserver(function () { labelAll(document); }).observe(main, {childList: true, subtree: true});
    }
  });
})();
