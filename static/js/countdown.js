// Live countdown of a hold. The server decides expiry; at zero we say so and reload
// so the page shows what the server says.
(function () {
  "use strict";
  // Back to a page the browser kept in memory: its clock and buttons may be out of date
  // (the seats released or changed since), so ask the server again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });
  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    var end = Date.now() + parseInt(el.dataset.seconds, 10) * 1000;
    var expired = el.closest(".countdown-box").querySelector(".countdown-expired");
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = m + ":" + (s < 10 ? "0" : "") + s;
      el.classList.toggle("urgent", left <= 60);
      if (left === 0) {
        clearInterval(timer);
        expired.hidden = false;
        setTimeout(function () { window.location.reload(); }, 3000);
      }
    }
    var timer = setInterval(tick, 1000);
    tick();
  });
})();
