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

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('button[data-copy]').forEach(setupCopy);
    document.querySelectorAll('form[method=post]').forEach(guardDoubleSubmit);
  });
})();
