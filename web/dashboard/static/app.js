// Paygate dashboard: small enhancements only. Every page works without this file.
(function () {
  'use strict';

  // Copy buttons: <button data-copy="element-id"> copies that element's text.
  function setupCopy(button) {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      var target = document.getElementById(button.getAttribute('data-copy'));
      if (!target) return;
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        var label = button.textContent;
        button.textContent = 'Copied';
        button.classList.add('is-done');
        setTimeout(function () {
          button.textContent = label;
          button.classList.remove('is-done');
        }, 1500);
      });
    });
  }

  // A form submits once: its submit buttons are disabled while the request runs, so a
  // double click cannot send two refunds (the server also de-duplicates).
  function guardDoubleSubmit(form) {
    form.addEventListener('submit', function (event) {
      if (form.getAttribute('data-submitting')) {
        event.preventDefault();
        return;
      }
      form.setAttribute('data-submitting', '1');
      // Disabled after the browser has collected the form (the pressed button's value too).
      setTimeout(function () {
        form.querySelectorAll('button[type=submit]').forEach(function (button) {
          button.disabled = true;
        });
      }, 0);
    });
  }

  // Coming back to a page from the history: its forms may be used again.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) return;
    document.querySelectorAll('form[data-submitting]').forEach(function (form) {
      form.removeAttribute('data-submitting');
      form.querySelectorAll('button[type=submit]').forEach(function (b) { b.disabled = false; });
    });
  });

  // The transactions list refreshes itself while any listed payment is pending: every few
  // seconds it fetches the same page's rows (fragment=rows) and puts them in place. It stops
  // when none is pending, pauses while the tab is hidden, and can be switched off. Changes are
  // announced politely; focus never moves.
  var REFRESH_MS = 3000;

  function setupAutoRefresh(tbody) {
    var control = document.querySelector('[data-test-id=auto-refresh]');
    var toggle = document.getElementById('auto-refresh-toggle');
    var status = document.getElementById('refresh-status');
    var count = document.getElementById('match-count');
    var timer = null;

    function pending() { return parseInt(tbody.getAttribute('data-pending') || '0', 10); }
    function wanted() { return toggle.checked && pending() > 0 && !document.hidden; }
    function schedule() {
      clearTimeout(timer);
      timer = wanted() ? setTimeout(refresh, REFRESH_MS) : null;
    }
    function refresh() {
      fetch(tbody.getAttribute('data-refresh-url'), { credentials: 'same-origin' })
        .then(function (answer) {
          if (!answer.ok || answer.redirected) throw new Error('refresh refused');
          return answer.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, 'text/html');
          var rows = doc.getElementById('transaction-rows');
          if (!rows) throw new Error('no rows');
          var before = pending();
          var changed = tbody.innerHTML.trim() !== rows.innerHTML.trim();
          if (changed) tbody.innerHTML = rows.innerHTML;
          tbody.setAttribute('data-pending', rows.getAttribute('data-pending') || '0');
          var total = doc.getElementById('match-count');
          if (total && count) count.textContent = total.textContent;
          if (changed || before !== pending()) {
            status.textContent = pending() > 0
              ? 'List updated: ' + pending() + ' pending.'
              : 'List updated: no payment pending.';
          }
          schedule();
        })
        .catch(function () {
          // Signed out or offline: stop quietly; reloading the page starts again.
          clearTimeout(timer);
          timer = null;
        });
    }

    control.hidden = false;
    toggle.addEventListener('change', function () {
      status.textContent = toggle.checked ? 'Auto-refresh on.' : 'Auto-refresh off.';
      schedule();
    });
    document.addEventListener('visibilitychange', schedule);
    schedule();
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('button[data-copy]').forEach(setupCopy);
    document.querySelectorAll('form[method=post]').forEach(guardDoubleSubmit);
    var rows = document.getElementById('transaction-rows');
    if (rows && rows.hasAttribute('data-refresh-url')) setupAutoRefresh(rows);
  });
})();
