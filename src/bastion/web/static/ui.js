// Bastion review UI: keyboard navigation only; the pages work without it.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target && e.target.tagName;
    return t === "INPUT" || t === "TEXTAREA" || t === "SELECT";
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("table[data-nav] tbody tr"));
  var cur = -1;
  function show(i) {
    if (!rows.length) return;
    if (cur >= 0) rows[cur].classList.remove("current");
    cur = Math.max(0, Math.min(rows.length - 1, i));
    rows[cur].classList.add("current");
    rows[cur].setAttribute("tabindex", "-1");
    rows[cur].focus();
  }
  var form = document.getElementById("decide-form");
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    if (rows.length) {
      if (e.key === "j") { show(cur + 1); e.preventDefault(); return; }
      if (e.key === "k") { show(cur - 1); e.preventDefault(); return; }
      if (e.key === "Enter" && cur >= 0) { window.location = rows[cur].getAttribute("data-href"); return; }
    }
    if (form) {
      var sel = document.getElementById("classification");
      if (/^[1-4]$/.test(e.key) && sel) {
        sel.selectedIndex = Number(e.key);
        var csam = form.querySelector('input[data-key="c"]');
        if (csam) csam.checked = true;
        e.preventDefault();
        return;
      }
      var radio = form.querySelector('input[data-key="' + e.key + '"]');
      if (radio) {
        radio.checked = true;
        e.preventDefault();
        if (radio.value !== "csam" || (sel && sel.value)) form.submit();
      }
    }
  });
})();
