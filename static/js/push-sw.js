// Service worker of the portal's web push: shows each notification and opens its link.
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { title: event.data.text() }; }
  event.waitUntil(
    self.registration.showNotification(data.title || "EnergySphere", {
      body: data.body || "",
      data: { url: data.url || "/notifications/" },
      tag: data.kind || "energysphere",
    })
  );
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
