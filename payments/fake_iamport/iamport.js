/*
 * Fake I'mport (PortOne V1) browser SDK, served by the local fake server.
 * Defines window.IMP = {init(code), request_pay(params, callback)} like
 * https://cdn.iamport.kr/v1/iamport.js, but the "PG window" is the fake's simulator:
 *  - with params.m_redirect_url: the page navigates to the simulator, which sends the
 *    customer back to m_redirect_url?imp_uid=…&merchant_uid=…&imp_success=…
 *  - otherwise: the simulator opens in a full-page overlay and callback(rsp) is called
 *    with the new v1 SDK's rsp (no `success`: test rsp.error_code).
 * Never use in production: settings.IAMPORT_JS_SDK_URL points at the real SDK there.
 */
(function () {
  "use strict";
  var BASE = "${base_url}";
  var ORIGIN = new URL(BASE).origin;
  var merchantCode = null;
  var open = false;

  function fail(params, callback, code, msg) {
    var rsp = {
      imp_uid: null,
      merchant_uid: params && params.merchant_uid,
      pay_method: (params && params.pay_method) || "card",
      paid_amount: 0,
      status: "failed",
      error_code: code,
      error_msg: msg,
    };
    if (typeof callback === "function") callback(rsp);
  }

  function overlay(payUrl, sessionId, callback) {
    var shade = document.createElement("div");
    shade.setAttribute("data-fake-iamport", "overlay");
    shade.style.cssText =
      "position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.55);" +
      "display:flex;align-items:center;justify-content:center;";
    var frame = document.createElement("iframe");
    frame.src = payUrl + "?mode=iframe";
    frame.title = "결제창 (fake I'mport) · Payment window";
    frame.style.cssText =
      "width:min(480px,100vw);height:min(720px,100vh);border:0;background:#fff;border-radius:8px;";
    shade.appendChild(frame);
    document.body.appendChild(shade);
    frame.focus();

    function onMessage(event) {
      var data = event.data;
      if (event.origin !== ORIGIN || !data || data.type !== "fake-iamport:result") return;
      if (data.session_id !== sessionId) return;
      window.removeEventListener("message", onMessage);
      // Let the customer see the result for a moment, as a real PG window would.
      setTimeout(function () {
        if (shade.parentNode) shade.parentNode.removeChild(shade);
        open = false;
        if (typeof callback === "function") callback(data.rsp);
      }, 150);
    }
    window.addEventListener("message", onMessage);
  }

  function request_pay(params, callback) {
    params = Object.assign({}, params || {});
    if (!merchantCode) {
      fail(params, callback, "F_INIT", "IMP.init(가맹점 식별코드)을 먼저 호출하세요. Call IMP.init() first.");
      return;
    }
    if (open) return; // one payment window at a time
    open = true;
    var redirect = !!params.m_redirect_url;
    fetch(BASE + "__fake__/sessions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ params: params, merchant_code: merchantCode, origin: window.location.origin }),
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || response.statusText);
          return data;
        });
      })
      .then(function (data) {
        if (!data.pay_url) {
          // Refused before any window opened (prepare mismatch, already paid, bad params).
          open = false;
          if (redirect && data.redirect_url) window.location.assign(data.redirect_url);
          else if (typeof callback === "function") callback(data.rsp);
          return;
        }
        if (redirect) window.location.assign(data.pay_url);
        else overlay(data.pay_url, data.session_id, callback);
      })
      .catch(function (error) {
        open = false;
        fail(params, callback, "F_FAKE", "Fake I'mport server unreachable at " + BASE + ": " + error);
      });
  }

  window.IMP = {
    init: function (code) {
      merchantCode = code;
    },
    request_pay: request_pay,
    // The real SDK has these too; the fake ignores them.
    agency: function () {},
    certification: function (params, callback) {
      fail(params, callback, "F_FAKE", "certification is not simulated by the fake I'mport");
    },
  };
})();
