// Live dashboard: the member's latest reading and the community balance over a WebSocket
// (apps/meters/consumers.py). Updates #live-balance and #latest-reading without a reload.
(function () {
  "use strict";
  var script = document.currentScript;
  var path = (script && script.dataset.wsPath) || "/ws/meters/live/";
  var target = document.getElementById("live-balance");
  if (!target) { return; }
  var state = { latest: null, balance: null };
  var fmt = new Intl.NumberFormat();

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function time(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function render() {
    target.textContent = "";
    target.dataset.state = "live";
    var b = state.balance;
    if (b) {
      var p = el("p", { id: "live-community" });
      p.appendChild(el("strong", {}, "Community " + time(b.interval_start) + ": "));
      p.appendChild(el("span", { id: "live-production" }, fmt.format(b.production_wh) + " Wh produced"));
      p.appendChild(document.createTextNode(" · "));
      p.appendChild(el("span", { id: "live-consumption" }, fmt.format(b.consumption_wh) + " Wh consumed"));
      p.appendChild(document.createTextNode(" · "));
      p.appendChild(el("span", { id: "live-net" }, (b.net_wh >= 0 ? "surplus " : "deficit ") + fmt.format(Math.abs(b.net_wh)) + " Wh"));
      target.appendChild(p);
    }
    var l = state.latest;
    if (l) {
      var q = el("p", { id: "live-latest", "data-interval": l.interval_start });
      q.textContent = "Your latest reading (" + l.meter + ", " + time(l.interval_start) + "–" +
        time(l.interval_end) + "): " + fmt.format(l.import_wh) + " Wh in, " +
        fmt.format(l.export_wh) + " Wh out · quality " + l.quality + " " + l.quality_label;
      target.appendChild(q);
      var static_line = document.getElementById("latest-reading");
      if (static_line) { static_line.textContent = q.textContent; }
    }
    if (!b && !l) { target.appendChild(el("span", { class: "muted" }, "Waiting for readings…")); }
  }
  var delay = 1000;
  function connect() {
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(proto + window.location.host + path);
    socket.onopen = function () { delay = 1000; };
    socket.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      if (msg.type === "snapshot") { state.latest = msg.latest; state.balance = msg.balance; }
      if (msg.type === "latest") { state.latest = msg.latest; }
      if (msg.type === "balance") { state.balance = msg.balance; }
      render();
    };
    socket.onclose = function () {
      target.dataset.state = "reconnecting";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
