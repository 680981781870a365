/*
 * The checkout frame's side of the conversation with checkout.js on the merchant's page:
 * who the parent is, posting to its exact origin on this instance's channel, Escape, and the
 * key check. Exposes window.PaygateBridge.
 */
(function (window, document) {
  "use strict";

  var NAME_PREFIX = "paygate:";

  /* checkout.js names the frame "paygate:" + JSON {channel, origin, key}: the exact origin to
   * post to and the channel id that keeps two checkouts on one page apart. A frame embedded by
   * hand falls back to the browser's own record of the parent's origin. */
  function info() {
    var given = {};
    if (window.name && window.name.indexOf(NAME_PREFIX) === 0) {
      try {
        given = JSON.parse(window.name.slice(NAME_PREFIX.length)) || {};
      } catch (e) {
        given = {};
      }
    }
    var ancestors = window.location.ancestorOrigins;
    var ancestor = ancestors && ancestors.length ? ancestors[0] : "";
    var origin = typeof given.origin === "string" ? given.origin : ancestor;
    if (!origin && document.referrer) {
      try {
        origin = new URL(document.referrer).origin;
      } catch (e) {
        origin = "";
      }
    }
    var channel = typeof given.channel === "string" ? given.channel : null;
    var target = /^https?:\/\/[^/]+$/.test(origin) ? origin : "";
    var opaque = origin === "null" || origin === "file://";
    if (opaque && channel && (!ancestor || /^(null|file:)/.test(ancestor))) {
      // A merchant's test.html opened from disk has an opaque origin that no target can
      // name: "*" is the only way to reach it (still only window.parent, and the SDK still
      // checks our origin, its frame and its channel).
      target = "*";
    }
    return {
      target: target,
      channel: channel,
      key: typeof given.key === "string" ? given.key : null,
    };
  }

  /* The SDK's frame keeps its name when it goes to a processor's page and back, so a page
   * reached through the return URL (which cannot say "embedded") still knows who holds it. */
  function framedBySdk() {
    return window.parent !== window && window.name.indexOf(NAME_PREFIX) === 0;
  }

  /** A bridge to the parent page; posting is a no-op unless embedded in a frame. */
  function connect(embedded) {
    var framed = (embedded || framedBySdk()) && window.parent !== window;
    var parent = framed ? info() : { target: "", channel: null, key: null };
    var bridge = {
      embedded: framed,
      key: parent.key,
      post: function (type, data) {
        if (!parent.target) return;
        var message = { type: type };
        if (data !== undefined) message.data = data;
        if (parent.channel) message.channel = parent.channel;
        window.parent.postMessage(message, parent.target);
      },
    };
    if (framed) {
      // Focus is inside this frame while the buyer types: the merchant page never sees the key.
      document.addEventListener("keydown", function (event) {
        if (event.key === "Escape") bridge.post("close_modal");
      });
    }
    return bridge;
  }

  /* The SDK's key travels in the frame name, not the iframe URL (which the contract fixes):
   * reload once with it in the query so the server checks it against the order's merchant.
   * Back from a processor's page in the SDK's frame, the URL lacks embedded=true too: the same
   * reload adds it, so the server draws the embedded page. Returns true when the page is
   * being replaced. */
  function checkKey(bridge) {
    if (!bridge.embedded) return false;
    var params = new URLSearchParams(window.location.search);
    var changed = false;
    if (bridge.key && !params.has("key")) {
      params.set("key", bridge.key);
      changed = true;
    }
    if (params.get("embedded") !== "true" && framedBySdk()) {
      params.set("embedded", "true");
      changed = true;
    }
    if (!changed) return false;
    window.location.replace(window.location.pathname + "?" + params.toString());
    return true;
  }

  window.PaygateBridge = { connect: connect, checkKey: checkKey };
})(window, document);
