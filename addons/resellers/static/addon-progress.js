// Enabling or disabling an addon for many workspaces on the reseller console: the form is sent in
// the background, the job it starts is polled, and each workspace's outcome is shown as it comes
// (a failed one with its reason). Without JS the form posts as usual and the page shows the
// result at the end. The words come from the page (data-* of #outcomes): translated there. No
// inline script (CSP).
(function () {
  "use strict";
  var box = document.getElementById("outcomes");
  if (!box || !window.fetch || !window.FormData) { return; }
  var list = box.querySelector("ol"), title = box.querySelector("h2"), summary = box.querySelector(".summary");

  function say(name, values) {
    var text = box.getAttribute("data-" + name) || "";
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(values[k])); });
    return text;
  }

  function show(job) {
    title.textContent = say("result", { addon: job.addon });
    list.textContent = "";
    job.items.forEach(function (item) {
      var li = document.createElement("li");
      li.className = item.state === "pending" ? "pending" : item.state;
      li.setAttribute("data-slug", item.slug);
      li.appendChild(document.createTextNode(item.slug + ": "));
      if (item.state === "failed") {
        var strong = document.createElement("strong");
        strong.textContent = say("failed");
        li.appendChild(strong);
        li.appendChild(document.createTextNode(" — " + item.error));
      } else {
        li.appendChild(document.createTextNode(say(item.state === "done" ? "done" : "working")));
      }
      list.appendChild(li);
    });
    summary.textContent = job.finished ? say("summary", { done: job.done, total: job.total }) : "";
    box.setAttribute("data-state", job.finished ? "finished" : "running");
  }

  function broken(form) {
    summary.textContent = say("broken");
    box.setAttribute("data-state", "broken");
    form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
  }

  function poll(url, form) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (job) {
        show(job);
        if (job.finished) {
          form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        } else {
          window.setTimeout(function () { poll(url, form); }, 400);
        }
      })
      .catch(function () { broken(form); });
  }

  document.querySelectorAll("form[data-addon-progress]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (!button || !button.name) { return; }  // an old browser: the form posts as usual
      event.preventDefault();
      var data = new FormData(form);
      data.append(button.name, button.value);
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      box.hidden = false;
      list.textContent = "";
      summary.textContent = say("working");
      fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin",  // (form.action: its button "action")
                           headers: { Accept: "application/json" } })
        .then(function (r) {
          return r.json().then(function (body) { return { ok: r.status === 202, body: body }; });
        })
        .then(function (answer) {
          if (!answer.ok) {
            summary.textContent = answer.body.detail || say("broken");
            box.setAttribute("data-state", "refused");
            form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
            return;
          }
          poll(answer.body.url, form);
        })
        .catch(function () { broken(form); });
    });
  });
}());
