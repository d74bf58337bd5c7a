// Cookie banner, enhanced: the choice is posted without a reload, and the footer's "Cookie settings"
// opens the banner in place. Without this script the same forms post and come back (303).
(function () {
  'use strict';
  var banner = document.getElementById('cookie-banner');
  if (!banner) { return; }
  var title = document.getElementById('cookie-banner-title');
  var returnTo = null;

  function close() {
    banner.hidden = true;
    var target = returnTo && document.contains(returnTo) ? returnTo : document.getElementById('content');
    returnTo = null;
    if (target) {
      if (target.id === 'content' && !target.hasAttribute('tabindex')) { target.setAttribute('tabindex', '-1'); }
      target.focus();
    }
  }

  function open(settings) {
    returnTo = document.activeElement;
    banner.hidden = false;
    var details = banner.querySelector('details.cookie-settings');
    if (details && settings) { details.open = true; }
    title.focus();
  }

  banner.addEventListener('submit', function (event) {
    var form = event.target;
    if (!window.fetch || !window.FormData) { return; }  // the plain post does it
    event.preventDefault();
    var data = new FormData(form);
    var submitter = event.submitter;
    if (submitter && submitter.name) { data.set(submitter.name, submitter.value); }
    fetch(form.action, {method: 'POST', body: data, credentials: 'same-origin',
                        headers: {'Accept': 'application/json'}})
      .then(function (response) {
        if (!response.ok) { throw new Error('consent not recorded: ' + response.status); }
        return response.json();
      })
      .then(function (answer) {
        var analytics = banner.querySelectorAll('input[name=analytics]');
        for (var i = 0; i < analytics.length; i++) { analytics[i].checked = answer.choice === 'analytics'; }
        close();
      })
      .catch(function () { form.submit(); });  // fall back to the plain post
  });

  document.addEventListener('click', function (event) {
    var link = event.target.closest ? event.target.closest('a.footer-link[href="/cookies"]') : null;
    if (!link) { return; }
    event.preventDefault();
    open(true);
  });
})();
