// Web push subscription for the notification preferences page (no inline script: CSP).
(function () {
  "use strict";
  var box = document.getElementById("push");
  var status = document.getElementById("push-status");
  if (!box) return;
  function say(text) { if (status) status.textContent = text; }
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    say("This browser does not support web push.");
    return;
  }
  function keyBytes(b64) {
    var s = (b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(s), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function post(body) {
    return fetch(box.dataset.subscribeUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": box.dataset.csrf },
      body: JSON.stringify(body),
    });
  }
  function registration() { return navigator.serviceWorker.register(box.dataset.workerUrl); }
  document.getElementById("push-enable").addEventListener("click", function () {
    registration()
      .then(function (reg) {
        return reg.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: keyBytes(box.dataset.vapidKey),
        });
      })
      .then(function (sub) { return post(sub.toJSON()); })
      .then(function (r) { say(r.ok ? "Push is on for this browser." : "Could not turn push on."); })
      .catch(function (e) { say("Could not turn push on: " + e.message); });
  });
  document.getElementById("push-disable").addEventListener("click", function () {
    registration()
      .then(function (reg) { return reg.pushManager.getSubscription(); })
      .then(function (sub) {
        if (!sub) return null;
        var endpoint = sub.endpoint;
        return sub.unsubscribe().then(function () { return post({ endpoint: endpoint, unsubscribe: true }); });
      })
      .then(function () { say("Push is off for this browser."); });
  });
})();
