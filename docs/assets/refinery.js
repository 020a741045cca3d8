// Builds table filter: package text, status, Python; state kept in the URL fragment.
(function () {
  function setup() {
    var table = document.getElementById("rf-table");
    var q = document.getElementById("rf-q");
    if (!table || !q) return;
    var status = document.getElementById("rf-status");
    var python = document.getElementById("rf-python");
    var count = document.getElementById("rf-count");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    function fromHash() {
      var params = new URLSearchParams(location.hash.slice(1));
      q.value = params.get("q") || "";
      status.value = params.get("status") || "";
      python.value = params.get("python") || "";
    }
    function apply(save) {
      var text = q.value.trim().toLowerCase(), s = status.value, p = python.value, shown = 0;
      rows.forEach(function (row) {
        var ok = (!text || row.dataset.n.indexOf(text) >= 0) &&
          (!s || row.dataset.s === s) && (!p || row.dataset.p === p);
        row.style.display = ok ? "" : "none";
        if (ok) shown++;
      });
      count.textContent = shown + " of " + rows.length + " rows";
      if (save) {
        var params = new URLSearchParams();
        if (text) params.set("q", text);
        if (s) params.set("status", s);
        if (p) params.set("python", p);
        history.replaceState(null, "", params.toString() ? "#" + params : location.pathname);
      }
    }
    [q, status, python].forEach(function (el) {
      el.addEventListener("input", function () { apply(true); });
    });
    window.addEventListener("hashchange", function () { fromHash(); apply(false); });
    fromHash();
    apply(false);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
