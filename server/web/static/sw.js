// The push service worker: shows the school's message and opens its link when tapped. The
// payload is {"title", "body", "url", "tag"}; the tag makes a resent message replace the shown one.
"use strict";
self.addEventListener("push", (event) => {
  let message = { title: "campusgate", body: "" };
  try {
    message = event.data ? event.data.json() : message;
  } catch (exc) {
    message.body = event.data ? event.data.text() : "";
  }
  event.waitUntil(
    self.registration.showNotification(message.title, {
      body: message.body,
      tag: message.tag,
      data: { url: message.url || "/" },
      lang: "vi",
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
