// Export progress page: poll the JSON endpoint, update the bar, reload when the package is ready.
(function () {
  var box = document.getElementById("export-job");
  var url = box.getAttribute("data-progress-url");
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        document.getElementById("export-progress").value = p.percent;
        document.getElementById("export-percent").textContent = p.percent + "%";
        document.getElementById("export-status").textContent = p.status_label;
        document.getElementById("export-rows").textContent = p.rows_done;
        if (p.error) { var e = document.getElementById("export-error"); e.textContent = p.error; e.hidden = false; }
        if (p.download_url) {
          document.getElementById("export-download-link").href = p.download_url;
          document.getElementById("export-download").hidden = false;
          window.location.reload();
          return;
        }
        if (p.status === "pending" || p.status === "running") { setTimeout(tick, 1000); }
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
