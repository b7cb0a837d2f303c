// Opens I'mport's payment window (the real SDK in production, the fake gateway's
// drop-in shim in development) and reports the result to the server, which checks
// it with I'mport itself: nothing the browser says is trusted.
(function () {
  "use strict";
  var config = document.getElementById("pay-config");
  var params = JSON.parse(document.getElementById("pay-params").textContent);
  var status = document.getElementById("pay-status");
  var started = false;

  function report(rsp) {
    status.textContent = config.dataset.working;
    fetch(config.dataset.completeUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.dataset.csrf },
      body: JSON.stringify({
        imp_uid: rsp.imp_uid || "",
        merchant_uid: rsp.merchant_uid || params.merchant_uid,
        error_code: rsp.error_code || "",
        error_msg: rsp.error_msg || "",
      }),
    })
      .then(function (r) { return r.json(); })
      .then(function (data) { window.location.assign(data.redirect); })
      .catch(function () { window.location.reload(); });
  }

  // On a computer the SDK answers through the callback; phones are sent away to the
  // payment app and come back to m_redirect_url instead.
  if (!/Mobi|Android|iPhone|iPad/i.test(navigator.userAgent)) delete params.m_redirect_url;

  // This page opens the window once per payment attempt. Shown again (Back after
  // paying, a reload), it would open a window for an attempt that is over: the booking
  // page says where things stand instead (and offers to pay again if there is anything
  // left to pay).
  var opened = "pay-window-opened:" + params.merchant_uid;
  function openedBefore() {
    try { return window.sessionStorage.getItem(opened) === "1"; } catch (e) { return false; }
  }

  function open() {
    if (started) return;
    started = true;
    try { window.sessionStorage.setItem(opened, "1"); } catch (e) { /* private mode: open anyway */ }
    window.IMP.init(config.dataset.merchant);
    window.IMP.request_pay(params, report);
  }

  window.addEventListener("pageshow", function (event) {
    if (event.persisted && openedBefore()) window.location.replace(config.dataset.bookingUrl);
  });
  document.getElementById("open-payment").addEventListener("click", function () { started = false; open(); });
  if (openedBefore()) {
    window.location.replace(config.dataset.bookingUrl);
  } else {
    open();
  }
})();
