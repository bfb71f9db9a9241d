// Copy buttons, without inline script (CSP): <button type="button" data-copy-target="#id" hidden>
// (or data-copy-target="id")
// copies the text (or an input's value) of #id and says "Copied" in a polite live region.
// The button stays hidden until this script runs, so a page without JavaScript shows no dead button.
(function () {
  "use strict";

  function liveRegion(button) {
    var region = button.nextElementSibling;
    if (region && region.hasAttribute("data-copy-status")) { return region; }
    region = document.createElement("span");
    region.setAttribute("data-copy-status", "");
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    region.className = "copy-status";
    button.insertAdjacentElement("afterend", region);
    return region;
  }

  function textOf(target) {
    return "value" in target && typeof target.value === "string" ? target.value : target.textContent.trim();
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  function setUp(button) {
    var ref = button.getAttribute("data-copy-target");  // "#id" or a bare id
    var target = ref.charAt(0) === "#" ? document.querySelector(ref) : document.getElementById(ref);
    if (!target) { return; }
    var region = liveRegion(button);
    var done = button.getAttribute("data-copy-done") || button.getAttribute("data-copied-label") || "Copied";
    var failed = button.getAttribute("data-copy-failed") || "Could not copy: select the text and copy it.";
    button.hidden = false;
    button.addEventListener("click", function () {
      region.textContent = "";
      copy(textOf(target)).then(
        function () { region.textContent = done; },
        function () { region.textContent = failed; }
      );
    });
  }

  document.querySelectorAll("[data-copy-target]").forEach(setUp);
})();
