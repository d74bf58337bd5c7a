// A template or saved reply picked in the send or reply form puts its text into the text box, where it
// can still be changed. Without JavaScript the server uses the template when the text box is left empty.
(function () {
  "use strict";
  document.querySelectorAll("select[data-fills]").forEach(function (select) {
    var area = document.getElementById(select.getAttribute("data-fills"));
    if (!area) { return; }
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var body = option && option.getAttribute("data-body");
      if (body !== null && body !== undefined) {
        area.value = body;
        area.dispatchEvent(new Event("input"));  // the segment counter follows
      }
    });
  });
})();
