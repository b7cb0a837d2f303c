// Zoom for the seat map. A 2,000-seat hall drawn across a phone's width leaves each
// seat a few pixels wide, too small to tap; the buttons enlarge the drawing inside its
// scrolling box and keep the middle of what was in view in the middle.
(function () {
  "use strict";
  var controls = document.querySelector("[data-map-zoom]");
  var box = document.querySelector("[data-map-scroll]");
  var svg = box && box.querySelector("svg.seatmap");
  if (!controls || !svg) return;
  // 100 % is the whole hall across the box, as a phone first shows it; six times that
  // makes a phone's seats about a fingertip wide.
  var levels = [1, 1.5, 2, 3, 4, 6];
  var level = 0;
  var shown = controls.querySelector("[data-zoom-level]");
  var out = controls.querySelector("[data-zoom-step='-1']");
  var into = controls.querySelector("[data-zoom-step='1']");
  // Without this script the drawing keeps a minimum width (CSS) and the box scrolls;
  // with it, zooming is how to see more.
  svg.style.minWidth = "0";

  function apply(next) {
    next = Math.max(0, Math.min(levels.length - 1, next));
    if (next === level) return;
    var middleX = (box.scrollLeft + box.clientWidth / 2) / svg.clientWidth;
    var middleY = (box.scrollTop + box.clientHeight / 2) / svg.clientHeight;
    level = next;
    var factor = levels[level];
    svg.style.width = factor * 100 + "%";
    box.classList.toggle("zoomed", factor > 1);
    box.scrollLeft = middleX * svg.clientWidth - box.clientWidth / 2;
    box.scrollTop = middleY * svg.clientHeight - box.clientHeight / 2;
    shown.textContent = Math.round(factor * 100) + "%";
    out.disabled = level === 0;
    into.disabled = level === levels.length - 1;
  }

  controls.addEventListener("click", function (event) {
    var button = event.target.closest("[data-zoom-step]");
    if (button) apply(level + parseInt(button.dataset.zoomStep, 10));
  });
  out.disabled = true;
  controls.hidden = false;  // without this script there is nothing to zoom with
})();
