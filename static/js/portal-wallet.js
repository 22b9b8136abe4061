/* Wallet page: when a browser wallet (EIP-1193 provider) is present, run Sign-In with Ethereum
   without copy and paste: get the message from the API, personal_sign it, submit the signature. */
(function () {
  "use strict";
  var script = document.currentScript;
  var box = document.getElementById("browser-wallet");
  if (!box || !window.ethereum) { return; }
  box.hidden = false;

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.message || data.detail || "Request failed"); }
        return data;
      });
    });
  }

  function toHex(text) {
    var bytes = new TextEncoder().encode(text);
    return "0x" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  document.getElementById("browser-wallet-link").addEventListener("click", function () {
    var address;
    window.ethereum.request({ method: "eth_requestAccounts" })
      .then(function (accounts) {
        address = accounts[0];
        return post(script.dataset.challengeUrl, { address: address });
      })
      .then(function (challenge) {
        return window.ethereum.request({
          method: "personal_sign", params: [toHex(challenge.message), address],
        }).then(function (signature) {
          return post(script.dataset.linkUrl, { message: challenge.message, signature: signature });
        });
      })
      .then(function () { window.location.reload(); })
      .catch(function (error) { window.alert("Wallet linking failed: " + error.message); });
  });
})();
