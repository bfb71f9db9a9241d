/* Copy buttons, for any page: <button type="button" data-copy-target="ID" hidden>Copy</button>
   copies the text (or an input's value) of the element #ID. The buttons stay hidden without
   JavaScript or a clipboard, so nobody meets a button that does nothing. Optional attributes:
   data-copied-label (default "Copied"). A static file: the CSP allows no inline script. */
(function () {
  "use strict";

  function textOf(target) {
    var value = "value" in target ? target.value : target.textContent;
    return (value || "").trim();
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    document.body.removeChild(area);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  function announce(button, message) {
    var original = button.dataset.copyOriginalLabel || button.textContent;
    button.dataset.copyOriginalLabel = original;
    button.textContent = message;
    window.setTimeout(function () { button.textContent = original; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var target = document.getElementById(button.dataset.copyTarget);
    if (!target) { return; }
    event.preventDefault();
    copy(textOf(target)).then(
      function () { announce(button, button.dataset.copiedLabel || "Copied"); },
      function () { announce(button, "Select the link and copy it"); }
    );
  });

  function reveal() {
    var buttons = document.querySelectorAll("[data-copy-target]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].hidden = false; }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reveal);
  } else {
    reveal();
  }
})();
