// Progressive enhancements for the dashboard. Every page works without this file.
(function () {
  "use strict";

  // Dropdowns are <details data-dropdown>: close them on an outside click or Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  function enhance(root) {
    // Copy buttons: <button data-copy="#selector" hidden>, shown only when they can work.
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      var source = document.querySelector(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.value || source.textContent).then(function () {
          button.textContent = "Copied";
          window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
        });
      });
    });
    root.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
    // The key form: a role only matters for secret keys.
    root.querySelectorAll("[data-key-form]").forEach(function (form) {
      var roleField = form.querySelector("[data-role-field]");
      if (!roleField) return;
      function sync() {
        var kind = form.querySelector("input[name=kind]:checked");
        roleField.hidden = Boolean(kind && kind.value === "write");
      }
      form.addEventListener("change", sync);
      sync();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
})();
