// Seat selection on the server-drawn SVG map: click, or keyboard (a roving tabindex:
// Tab enters the map, arrow keys move to the nearest seat that way, Space/Enter
// chooses). The server re-checks everything; this only builds the form.
(function () {
  "use strict";
  // The customer's hold form, or the staff seat form (no limit, no prices).
  var form = document.querySelector("form[data-seat-form]");
  var svg = document.querySelector("svg.seatmap");
  if (!form || !svg) return;
  var pricesEl = document.getElementById("grade-prices");
  var grades = pricesEl ? JSON.parse(pricesEl.textContent) : {};
  var limit = form.dataset.limit ? parseInt(form.dataset.limit, 10) : Infinity;
  var inputs = document.getElementById("selected-inputs");
  var list = document.getElementById("selection-list");
  var countEls = document.querySelectorAll("[data-selection-count]");
  var totalEls = document.querySelectorAll("[data-selection-total]");
  // The panel's limit message, and the phone bar's (the panel may be far below on a phone).
  var limitMessages = Array.prototype.slice.call(document.querySelectorAll("[data-limit-message]"));
  function showLimit(shown) { limitMessages.forEach(function (el) { el.hidden = !shown; }); }
  var seats = Array.prototype.slice.call(svg.querySelectorAll("circle[role=checkbox]"));
  var lang = document.documentElement.lang || "ko";
  var won = function (n) {
    var s = n.toLocaleString("en-US");
    return lang.indexOf("ko") === 0 ? s + "원" : "₩" + s;
  };
  var labelOf = function (seat) {
    var title = seat.querySelector("title");
    return title ? title.textContent.split(" · ")[0] : "";
  };

  // Places asked for in each standing zone: the count, the price, and the zones with any.
  function standingCount() {
    var total = 0, price = 0, zones = [];
    form.querySelectorAll("input[data-zone-grade]").forEach(function (input) {
      var q = Math.max(0, parseInt(input.value, 10) || 0);
      if (!q) return;
      var grade = grades[input.dataset.zoneGrade];
      total += q;
      if (grade) price += q * grade.price;
      zones.push({ name: input.dataset.zoneName, count: q, grade: grade });
    });
    return { count: total, price: price, zones: zones };
  }

  function selectedSeats() {
    return seats.filter(function (s) { return s.getAttribute("aria-checked") === "true"; });
  }

  function refresh() {
    var chosen = selectedSeats();
    inputs.innerHTML = "";
    if (list) list.innerHTML = "";
    var price = 0;
    chosen.forEach(function (seat) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "items";
      input.value = seat.dataset.item;
      inputs.appendChild(input);
      var grade = grades[seat.dataset.grade];
      price += grade ? grade.price : 0;
      if (list) {
        var li = document.createElement("li");
        li.textContent = labelOf(seat) + " · " + (grade ? grade.name + " " + won(grade.price) : "");
        list.appendChild(li);
      }
    });
    var standing = standingCount();
    if (list) {  // places in a zone are listed too, one line per zone
      standing.zones.forEach(function (zone) {
        var li = document.createElement("li");
        var grade = zone.grade;
        li.textContent = zone.name + " × " + zone.count + (grade ? " · " + grade.name + " " + won(grade.price * zone.count) : "");
        list.appendChild(li);
      });
    }
    if (list && !chosen.length && !standing.count) {  // "nothing chosen yet", unless places in a zone are
      var li = document.createElement("li");
      li.className = "muted";
      li.textContent = list.dataset.empty || "";
      list.appendChild(li);
    }
    var count = chosen.length + standing.count;
    // The choice panel, and the phone bar (which submits the same form).
    countEls.forEach(function (el) { el.textContent = count; });
    totalEls.forEach(function (el) { el.textContent = won(price + standing.price); });
    showLimit(count > limit);
    return count;
  }

  function toggle(seat) {
    var on = seat.getAttribute("aria-checked") === "true";
    if (!on && selectedSeats().length + standingCount().count >= limit) {
      showLimit(true);
      return;
    }
    seat.setAttribute("aria-checked", on ? "false" : "true");
    seat.classList.toggle("selected", !on);
    clearErrors();
    refresh();
  }

  // What the last try was told ("choose at least one seat", "just taken") is out of date
  // once the choice changes; the seats taken stay greyed out on the map.
  function clearErrors() {
    var box = document.getElementById("hold-error");
    if (box) box.remove();
    form.querySelectorAll("p.error:not([data-limit-message])").forEach(function (p) { p.remove(); });
    form.querySelectorAll(".has-error").forEach(function (field) { field.classList.remove("has-error"); });
  }

  function focusSeat(seat) {
    seats.forEach(function (s) { s.setAttribute("tabindex", "-1"); });
    seat.setAttribute("tabindex", "0");
    seat.focus();
  }

  // The nearest seat in a direction: mostly along that axis, a little across it.
  function neighbour(seat, dx, dy) {
    var x = +seat.getAttribute("cx"), y = +seat.getAttribute("cy");
    var best = null, bestScore = Infinity;
    seats.forEach(function (other) {
      if (other === seat) return;
      var ox = +other.getAttribute("cx") - x, oy = +other.getAttribute("cy") - y;
      var along = ox * dx + oy * dy;
      if (along <= 0) return;
      var across = Math.abs(ox * dy) + Math.abs(oy * dx);
      var score = along + across * 3;
      if (score < bestScore) { bestScore = score; best = other; }
    });
    return best;
  }

  var keys = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  svg.addEventListener("click", function (event) {
    var seat = event.target.closest("circle[role=checkbox]");
    if (seat) { toggle(seat); focusSeat(seat); return; }
    // A standing zone is chosen by how many places: tapping it asks for one, in its field.
    var zone = event.target.closest("g.zone[data-section]");
    var input = zone && form.querySelector('input[name="standing-' + zone.dataset.section + '"]');
    if (!input) return;
    if (!(parseInt(input.value, 10) > 0) && !zone.classList.contains("taken")) {
      if (selectedSeats().length + standingCount().count >= limit) { showLimit(true); return; }
      input.value = 1;
      clearErrors();
      refresh();
    }
    input.scrollIntoView({ block: "center", behavior: "smooth" });
    input.focus({ preventScroll: true });
  });
  svg.addEventListener("keydown", function (event) {
    var seat = event.target.closest("circle[role=checkbox]");
    if (!seat) return;
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      toggle(seat);
    } else if (keys[event.key]) {
      event.preventDefault();
      var next = neighbour(seat, keys[event.key][0], keys[event.key][1]);
      if (next) focusSeat(next);
    }
  });
  form.querySelectorAll("input[data-zone-grade]").forEach(function (input) {
    input.addEventListener("input", function () { clearErrors(); refresh(); });
  });
  function showError(text) {
    var box = document.getElementById("hold-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "hold-error";
      box.className = "alert alert-error";
      box.setAttribute("role", "alert");
      var frame = document.querySelector(".seatmap-layout");
      frame.parentNode.insertBefore(box, frame);
    }
    box.textContent = text;
    // On a phone the button pressed may be the bar at the bottom: bring the answer into view.
    if (text && box.getBoundingClientRect().top < 0) box.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  // Seats someone else just took: grey them out, untick them, keep the rest.
  function markTaken(ids) {
    // One pass over the selectable seats, however many ids (a sold-down hall sends thousands).
    var taken = new Set(ids.map(String));
    seats = seats.filter(function (seat) {
      if (!taken.has(seat.dataset.item)) return true;
      seat.setAttribute("aria-checked", "false");
      seat.classList.remove("selected");
      seat.classList.add("taken");
      seat.removeAttribute("role");
      seat.removeAttribute("tabindex");
      seat.setAttribute("fill", "#c9ccd1");
      return false;
    });
    keepTabStop();
    refresh();
  }

  // The roving tabindex needs one seat with tabindex=0, or Tab skips the map: after seats
  // are greyed out, the one that had it may be gone.
  function keepTabStop() {
    if (seats.some(function (s) { return s.getAttribute("tabindex") === "0"; })) return;
    var stop = selectedSeats()[0] || seats[0];
    if (stop) stop.setAttribute("tabindex", "0");
  }

  // Back from checkout, a browser may show this page from its memory, with the form
  // already sent and its token used: draw it afresh (a new token, today's seats).
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  form.addEventListener("submit", function (event) {
    if (refresh() > limit) { event.preventDefault(); showLimit(true); return; }
    // One click, one hold: the server would also treat a resubmission as the same hold.
    var button = document.getElementById("hold-button");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.sent) return;
    button.dataset.sent = "1";
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (data) { return { status: response.status, data: data }; });
      })
      .then(function (answer) {
        if (answer.data.redirect) { window.location.assign(answer.data.redirect); return; }
        delete button.dataset.sent;
        // Every seat gone since the page was drawn, not only the ones just tried.
        if (answer.data.taken) markTaken(answer.data.unavailable || answer.data.taken);
        showError(answer.data.error || "");
      })
      .catch(function () { form.submit(); });  // no JSON (e.g. signed out): the plain form
  });

  if (list) {
    var empty = document.getElementById("selection-empty");
    list.dataset.empty = empty ? empty.textContent : "";
  }
  keepTabStop();
  refresh();
})();
