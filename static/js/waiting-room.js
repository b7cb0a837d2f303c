// The waiting room counts down to the visitor's turn, which the server gave with the
// page, and then moves on to the seat map. No polling: a line of thousands costs the
// server one request each. The seat map checks the turn again; arriving a moment early
// (a fast clock) just brings the visitor back here for the last seconds.
(function () {
  "use strict";
  var room = document.querySelector("[data-waiting-room]");
  if (!room) return;
  var texts = JSON.parse(document.getElementById("waiting-room-texts").textContent);
  var ahead = room.querySelector("[data-ahead]");
  var wait = room.querySelector("[data-wait]");
  var interval = parseFloat(room.dataset.interval) * 1000;
  var number = parseInt(room.dataset.number, 10);
  var turn = Date.now() + parseFloat(room.dataset.waitSeconds) * 1000;
  var lang = document.documentElement.lang || undefined;

  function fill(one, other, count) {
    return (count === 1 ? one : other).replace("{count}", count.toLocaleString(lang));
  }

  function show(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function tick() {
    var left = turn - Date.now();
    if (left <= 0) {
      window.location.replace(room.dataset.next);  // Back from the map skips this page
      return;
    }
    // Those still waiting before this number: one is let in per interval until ours.
    var before = Math.max(0, Math.min(number - 1, Math.ceil(left / interval) - 1));
    // Written only when it changes: the line is a live region, read out on each change.
    show(ahead, fill(texts.ahead_one, texts.ahead_other, before));
    show(wait, fill(texts.wait_one, texts.wait_other, Math.max(1, Math.ceil(left / 60000))));
    setTimeout(tick, Math.min(1000, left));
  }
  tick();
})();
