/*!
 * Paygate checkout.js: open the hosted checkout in a modal on a merchant's page.
 * No dependencies. Docs: docs/checkout.md.
 *
 *   <script src="https://checkout.example.com/checkout.js"></script>
 *   var checkout = new PaymentGateway({ key: "key_...", orderId: "order_...",
 *     onSuccess: function (r) {}, onFailure: function (e) {}, onClose: function () {} });
 *   checkout.open();
 */
(function (window, document) {
  "use strict";

  if (window.PaymentGateway) return; // loaded twice: keep the first, open instances still work

  var VERSION = "1.0.0";
  var MODAL_ID = "payment-gateway-modal";
  var LOAD_TIMEOUT_MS = 20000; // the checkout page did not load at all
  var READY_GRACE_MS = 3000; // it loaded but never said hello (an error page, a failed script)
  var STYLE_ID = "payment-gateway-styles";

  /* The checkout's origin is the origin this script came from, so
   * <script src="https://pay.example.com/checkout.js"> works on any site unchanged. */
  var CHECKOUT_ORIGIN = (function () {
    var script = document.currentScript;
    if (!script) {
      var scripts = document.querySelectorAll("script[src]");
      for (var i = scripts.length - 1; i >= 0; i--) {
        if (/\/checkout\.js(\?|#|$)/.test(scripts[i].src)) {
          script = scripts[i];
          break;
        }
      }
    }
    try {
      return new URL(script.src, window.location.href).origin;
    } catch (e) {
      return window.location.origin;
    }
  })();

  var CSS = [
    "#" + MODAL_ID + "{position:fixed;inset:0;z-index:2147483000;}",
    "#" + MODAL_ID + " .modal-overlay{position:absolute;inset:0;display:flex;" +
      "align-items:center;justify-content:center;padding:24px;" +
      "background:rgba(15,23,42,.62);animation:pg-fade .18s ease-out;}",
    "#" + MODAL_ID + " .modal-content{position:relative;width:100%;max-width:440px;" +
      "height:min(680px,calc(100vh - 48px));background:#fff;border-radius:16px;" +
      "overflow:hidden;box-shadow:0 30px 80px -20px rgba(0,0,0,.55);" +
      "animation:pg-rise .22s ease-out;outline:none;}",
    "#" + MODAL_ID + " iframe{display:block;width:100%;height:100%;border:0;background:#fff;}",
    "#" + MODAL_ID + " .close-button{position:absolute;top:14px;right:14px;width:36px;" +
      "height:36px;display:flex;align-items:center;justify-content:center;padding:0;" +
      "font:400 24px/1 system-ui,sans-serif;color:#fff;cursor:pointer;border:0;" +
      "border-radius:50%;background:rgba(255,255,255,.18);}",
    "#" + MODAL_ID + " .close-button:hover{background:rgba(255,255,255,.3);}",
    "#" + MODAL_ID + " .close-button:focus-visible{outline:3px solid #a5b4fc;outline-offset:2px;}",
    "#" + MODAL_ID + " .pg-sentinel{position:absolute;width:1px;height:1px;overflow:hidden;" +
      "clip:rect(0 0 0 0);}",
    "#" + MODAL_ID + " .pg-unavailable{position:absolute;inset:0;display:flex;" +
      "flex-direction:column;align-items:center;justify-content:center;gap:8px;padding:32px;" +
      "text-align:center;font:15px/1.45 system-ui,sans-serif;color:#374151;background:#fff;}",
    "#" + MODAL_ID + " .pg-unavailable strong{font-size:18px;color:#111827;}",
    "#" + MODAL_ID + " .pg-unavailable + .close-button{color:#374151;background:#f3f4f6;}",
    "@media (max-width:600px){#" + MODAL_ID + " .modal-overlay{padding:0;}#" + MODAL_ID +
      " .modal-content{max-width:none;height:100%;border-radius:0;}}",
    "@keyframes pg-fade{from{opacity:0}}",
    "@keyframes pg-rise{from{opacity:0;transform:translateY(16px) scale(.98)}}",
    "@media (prefers-reduced-motion:reduce){#" + MODAL_ID + " *{animation:none!important}}",
  ].join("\n");

  /* A constructed stylesheet is not an inline <style>, so a merchant CSP without
   * 'unsafe-inline' for styles still lets the modal render; older browsers get a <style>. */
  function installStyles() {
    if (document.getElementById(STYLE_ID) || installStyles.done) return;
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
      installStyles.done = true;
      return;
    } catch (e) {
      // fall through to a <style> element
    }
    var style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = CSS;
    document.head.appendChild(style);
  }

  function channelId() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var out = "pgc_";
    for (var i = 0; i < bytes.length; i++) out += ("0" + bytes[i].toString(16)).slice(-2);
    return out;
  }

  function element(tag, attrs) {
    var node = document.createElement(tag);
    for (var name in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, name)) node.setAttribute(name, attrs[name]);
    }
    return node;
  }

  /* A merchant callback that throws must not leave the modal half-closed: report it later. */
  function call(callback, value) {
    if (typeof callback !== "function") return;
    try {
      callback(value);
    } catch (error) {
      window.setTimeout(function () {
        throw error;
      });
    }
  }

  var active = null; // one checkout modal at a time

  function PaymentGateway(options) {
    if (!(this instanceof PaymentGateway)) {
      throw new TypeError("PaymentGateway must be called with new");
    }
    options = options || {};
    if (typeof options.key !== "string" || !options.key) {
      throw new Error("PaymentGateway: options.key (your API key) is required");
    }
    if (typeof options.orderId !== "string" || !options.orderId) {
      throw new Error("PaymentGateway: options.orderId is required");
    }
    this.options = {
      key: options.key,
      orderId: options.orderId,
      onSuccess: options.onSuccess,
      onFailure: options.onFailure,
      onClose: options.onClose,
    };
    this.channel = channelId();
    this.modal = null;
    this._onMessage = this._onMessage.bind(this);
    this._onKeydown = this._onKeydown.bind(this);
  }

  PaymentGateway.version = VERSION;
  PaymentGateway.origin = CHECKOUT_ORIGIN;

  PaymentGateway.prototype.checkoutUrl = function () {
    return (
      CHECKOUT_ORIGIN + "/checkout?order_id=" + encodeURIComponent(this.options.orderId) +
      "&embedded=true"
    );
  };

  PaymentGateway.prototype.open = function () {
    if (this.modal) return this;
    if (active) active.close();
    var self = this;
    installStyles();
    this.returnFocus = document.activeElement;
    this.ready = false;

    var modal = element("div", { id: MODAL_ID, "data-test-id": "payment-modal" });
    var overlay = element("div", { class: "modal-overlay" });
    var content = element("div", {
      class: "modal-content",
      role: "dialog",
      "aria-modal": "true",
      "aria-label": "Secure payment checkout",
      tabindex: "-1",
    });
    var iframe = element("iframe", {
      src: this.checkoutUrl(),
      "data-test-id": "payment-iframe",
      title: "Paygate secure checkout",
      allow: "payment",
    });
    // The frame's name carries what the page needs to talk back: our exact origin, this
    // instance's channel, and the key (checked against the order's merchant by the server).
    iframe.name =
      "paygate:" +
      JSON.stringify({
        channel: this.channel,
        origin: window.location.origin,
        key: this.options.key,
      });
    var close = element("button", {
      type: "button",
      class: "close-button",
      "data-test-id": "close-modal-button",
      "aria-label": "Close checkout",
    });
    close.textContent = "\u00d7";
    close.addEventListener("click", function () {
      self.close();
    });
    // Focus trap: Tab past either end of the dialog wraps around to the other end.
    var first = element("span", { class: "pg-sentinel", tabindex: "0", "aria-hidden": "true" });
    var last = element("span", { class: "pg-sentinel", tabindex: "0", "aria-hidden": "true" });
    first.addEventListener("focus", function () {
      close.focus();
    });
    last.addEventListener("focus", function () {
      iframe.focus();
    });
    iframe.addEventListener("load", function () {
      self._armTimeout(READY_GRACE_MS);
    });

    content.appendChild(first);
    content.appendChild(iframe);
    content.appendChild(close);
    content.appendChild(last);
    overlay.appendChild(content);
    modal.appendChild(overlay);

    this.modal = modal;
    this.iframe = iframe;
    this.content = content;
    this.closeButton = close;
    active = this;
    window.addEventListener("message", this._onMessage);
    document.addEventListener("keydown", this._onKeydown, true);
    this._hideBackground();
    document.body.appendChild(modal);
    this._armTimeout(LOAD_TIMEOUT_MS);
    content.focus();
    return this;
  };

  PaymentGateway.prototype.close = function () {
    if (!this.modal) return this;
    var modal = this.modal;
    this.modal = null;
    window.clearTimeout(this.timer);
    window.removeEventListener("message", this._onMessage);
    document.removeEventListener("keydown", this._onKeydown, true);
    if (modal.parentNode) modal.parentNode.removeChild(modal);
    this._restoreBackground();
    if (active === this) active = null;
    var target = this.returnFocus;
    this.returnFocus = null;
    if (target && typeof target.focus === "function" && document.contains(target)) {
      target.focus();
    }
    call(this.options.onClose);
    return this;
  };

  PaymentGateway.prototype.isOpen = function () {
    return !!this.modal;
  };

  PaymentGateway.prototype._onMessage = function (event) {
    // Only our own frame, from the checkout's origin, on this instance's channel.
    if (!this.modal || event.source !== this.iframe.contentWindow) return;
    if (event.origin !== CHECKOUT_ORIGIN) return;
    var message = event.data;
    if (!message || typeof message !== "object" || message.channel !== this.channel) return;
    var data = message.data && typeof message.data === "object" ? message.data : {};
    switch (message.type) {
      case "checkout_ready":
        this.ready = true;
        window.clearTimeout(this.timer);
        if (document.activeElement === this.content) this.iframe.focus(); // into the form
        break;
      case "payment_success":
        call(this.options.onSuccess, data);
        this.close();
        break;
      case "payment_failed":
        call(this.options.onFailure, data);
        break;
      case "close_modal":
        this.close();
        break;
    }
  };

  PaymentGateway.prototype._onKeydown = function (event) {
    if (event.key === "Escape" || event.key === "Esc") {
      event.preventDefault();
      this.close();
    }
  };

  PaymentGateway.prototype._armTimeout = function (delay) {
    var self = this;
    if (this.ready) return;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(function () {
      if (!self.modal || self.ready) return;
      self._unavailable();
    }, delay);
  };

  /* The checkout page could not be loaded: say so in the modal and tell the merchant. */
  PaymentGateway.prototype._unavailable = function () {
    var box = element("div", { class: "pg-unavailable", role: "alert" });
    var title = document.createElement("strong");
    title.textContent = "Checkout could not be loaded";
    var text = document.createElement("span");
    text.textContent = "Nothing has been charged. Please close this window and try again.";
    box.appendChild(title);
    box.appendChild(text);
    this.iframe.style.visibility = "hidden";
    this.content.insertBefore(box, this.closeButton);
    this.closeButton.focus();
    call(this.options.onFailure, {
      orderId: this.options.orderId,
      error: {
        code: "CHECKOUT_UNAVAILABLE",
        description: "The checkout page could not be loaded",
      },
    });
  };

  /* Everything behind the dialog becomes inert: no focus, no clicks, hidden from screen
   * readers; scrolling is locked. Both are undone exactly on close. */
  PaymentGateway.prototype._hideBackground = function () {
    var hidden = [];
    var children = document.body.children;
    for (var i = 0; i < children.length; i++) {
      var node = children[i];
      if (node.tagName === "SCRIPT" || node.hasAttribute("inert")) continue;
      node.setAttribute("inert", "");
      hidden.push(node);
    }
    this.inerted = hidden;
    this.overflow = document.documentElement.style.overflow;
    document.documentElement.style.overflow = "hidden";
  };

  PaymentGateway.prototype._restoreBackground = function () {
    (this.inerted || []).forEach(function (node) {
      node.removeAttribute("inert");
    });
    this.inerted = [];
    document.documentElement.style.overflow = this.overflow || "";
  };

  window.PaymentGateway = PaymentGateway;
})(window, document);
