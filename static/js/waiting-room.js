// The waiting room asks the server every few seconds where the visitor stands and moves
// on to the seat map when the server says it is their turn. The server decides; this
// only shows it.
(function () {
  "use strict";
  var room = document.querySelector("[data-waiting-room]");
  if (!room) return;
  var ahead = room.querySelector("[data-ahead]");
  var wait = room.querySelector("[data-wait]");

  function check() {
    fetch(room.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.admitted) {
          window.location.assign(data.redirect);
          return;
        }
        ahead.textContent = data.ahead_text;
        wait.textContent = data.wait_text;
        // Close to the turn, ask sooner; never more often than every second.
        setTimeout(check, Math.min(5000, Math.max(1000, data.wait_seconds * 500)));
      })
      .catch(function () { setTimeout(check, 5000); });
  }
  setTimeout(check, 1000);
})();
