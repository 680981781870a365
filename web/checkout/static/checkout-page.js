/*
 * Paygate hosted checkout: method choice, the same validation as the server (VPA, Luhn,
 * MM/YY expiry, CVV) with inline accessible errors, payment creation, status polling every
 * 2 s, and, when embedded by checkout.js, messages to the merchant page.
 *
 * Card numbers and CVVs only ever leave this page in the body of the payment request.
 */
(function () {
  "use strict";

  var POLL_INTERVAL_MS = 2000;
  var SLOW_AFTER_MS = 60000;
  var VPA_PATTERN = /^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$/;
  var FIELD_INPUTS = {
    vpa: "vpa",
    "card.number": "card-number",
    "card.expiry": "card-expiry",
    "card.cvv": "card-cvv",
    "card.holder_name": "card-name",
  };

  // -- talking to the merchant page (embedded mode) ------------------------------------------

  /* checkout.js names the frame "paygate:" + JSON {channel, origin}: the exact origin to post
   * to and the channel id that keeps two checkouts on one page apart. A frame embedded by hand
   * falls back to the browser's own record of the parent's origin. */
  function bridgeInfo() {
    var info = {};
    if (window.name && window.name.indexOf("paygate:") === 0) {
      try {
        info = JSON.parse(window.name.slice(8)) || {};
      } catch (e) {
        info = {};
      }
    }
    var ancestors = window.location.ancestorOrigins;
    var ancestor = ancestors && ancestors.length ? ancestors[0] : "";
    var origin = typeof info.origin === "string" ? info.origin : ancestor;
    if (!origin && document.referrer) {
      try {
        origin = new URL(document.referrer).origin;
      } catch (e) {
        origin = "";
      }
    }
    var target = /^https?:\/\/[^/]+$/.test(origin) ? origin : "";
    var opaque = origin === "null" || origin === "file://";
    if (opaque && info.channel && (!ancestor || /^(null|file:)/.test(ancestor))) {
      // A merchant's test.html opened from disk has an opaque origin that no target can
      // name: "*" is the only way to reach it (still only window.parent, and the SDK still
      // checks our origin, its frame and its channel).
      target = "*";
    }
    return {
      origin: target,
      channel: typeof info.channel === "string" ? info.channel : null,
      key: typeof info.key === "string" ? info.key : null,
    };
  }

  function makeBridge(embedded) {
    var info = embedded && window.parent !== window ? bridgeInfo() : { origin: "" };
    return {
      info: info,
      post: function (type, data) {
        if (!info.origin) return;
        var message = { type: type };
        if (data !== undefined) message.data = data;
        if (info.channel) message.channel = info.channel;
        window.parent.postMessage(message, info.origin);
      },
    };
  }

  function closeOnEscape(bridge) {
    // Focus is inside this frame while the buyer types: the merchant page never sees the key.
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") bridge.post("close_modal");
    });
  }

  // -- validation (mirrors paygate/services/validation.py) -----------------------------------

  function luhnOk(digits) {
    var total = 0;
    for (var i = 0; i < digits.length; i++) {
      var digit = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) {
        digit *= 2;
        if (digit > 9) digit -= 9;
      }
      total += digit;
    }
    return total % 10 === 0;
  }

  function cardDigits(value) {
    return value.replace(/[\s-]/g, "");
  }

  function cardNetwork(digits) {
    var two = digits.slice(0, 2);
    if (digits.charAt(0) === "4") return "visa";
    if (two >= "51" && two <= "55") return "mastercard";
    if (two === "34" || two === "37") return "amex";
    if (two === "60" || two === "65" || (two >= "81" && two <= "89")) return "rupay";
    return "";
  }

  function parseExpiry(value) {
    var match = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(value);
    if (!match) return null;
    var year = parseInt(match[2], 10);
    return { month: parseInt(match[1], 10), year: year < 100 ? year + 2000 : year };
  }

  var validators = {
    vpa: function (value) {
      if (!value) return "Enter your UPI ID";
      if (value.length > 255 || !VPA_PATTERN.test(value)) {
        return "Enter a valid UPI ID, like name@bank";
      }
      return "";
    },
    "card-number": function (value) {
      var digits = cardDigits(value);
      if (!digits) return "Enter your card number";
      if (!/^\d{13,19}$/.test(digits) || !luhnOk(digits)) return "Enter a valid card number";
      return "";
    },
    "card-expiry": function (value) {
      if (!value.trim()) return "Enter a valid expiry (MM/YY)";
      var expiry = parseExpiry(value);
      var now = new Date();
      var year = now.getUTCFullYear();
      var month = now.getUTCMonth() + 1;
      if (!expiry || expiry.month < 1 || expiry.month > 12 || expiry.year > year + 50) {
        return "Enter a valid expiry (MM/YY)";
      }
      if (expiry.year < year || (expiry.year === year && expiry.month < month)) {
        return "This card has expired";
      }
      return "";
    },
    "card-cvv": function (value) {
      if (!/^\d{3,4}$/.test(value)) return "Enter the 3 or 4 digit CVV";
      return "";
    },
    "card-name": function (value) {
      if (value.length > 255) return "The name must be at most 255 characters";
      return "";
    },
  };

  function setFieldError(input, message) {
    var error = document.getElementById(input.id + "-error");
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.parentElement.closest(".field").classList.add("has-error");
    } else {
      input.removeAttribute("aria-invalid");
      input.parentElement.closest(".field").classList.remove("has-error");
    }
    if (error) error.textContent = message;
  }

  /** Validate every field of a form; show inline errors; return true when all pass. */
  function validateForm(form) {
    var firstInvalid = null;
    Array.prototype.forEach.call(form.querySelectorAll("input"), function (input) {
      var check = validators[input.id];
      var message = check ? check(input.value.trim()) : "";
      setFieldError(input, message);
      if (message && !firstInvalid) firstInvalid = input;
    });
    if (firstInvalid) firstInvalid.focus();
    return !firstInvalid;
  }

  // -- input helpers -------------------------------------------------------------------------

  function formatCardNumber(input, badge) {
    var digits = input.value.replace(/\D/g, "").slice(0, 19);
    var network = cardNetwork(digits);
    var groups = network === "amex" ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var parts = [];
    var at = 0;
    for (var i = 0; i < groups.length && at < digits.length; i++) {
      parts.push(digits.slice(at, at + groups[i]));
      at += groups[i];
    }
    var formatted = parts.join(" ");
    if (formatted !== input.value) input.value = formatted;
    var names = { visa: "VISA", mastercard: "Mastercard", amex: "AMEX", rupay: "RuPay" };
    badge.textContent = names[network] || "";
    badge.className = "network-badge" + (network ? " network-" + network : "");
  }

  function formatExpiry(input, event) {
    if (event && event.inputType && event.inputType.indexOf("delete") === 0) return;
    var digits = input.value.replace(/\D/g, "").slice(0, 4);
    if (digits.length === 1 && digits > "1") digits = "0" + digits;
    var formatted = digits.length > 2 ? digits.slice(0, 2) + "/" + digits.slice(2) : digits;
    if (formatted !== input.value) input.value = formatted;
  }

  function idempotencyKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return (
      "chk_" +
      Array.prototype.map
        .call(bytes, function (b) {
          return ("0" + b.toString(16)).slice(-2);
        })
        .join("")
    );
  }

  // -- the checkout ----------------------------------------------------------------------------

  function Checkout(root) {
    this.root = root;
    this.orderId = root.getAttribute("data-order-id");
    this.amount = parseInt(root.getAttribute("data-amount"), 10);
    this.embedded = root.getAttribute("data-embedded") === "true";
    this.bridge = makeBridge(this.embedded);
    this.panel = document.getElementById("pay-panel");
    this.stage = document.getElementById("pay-stage");
    this.slot = document.getElementById("form-slot");
    this.methodButtons = root.querySelectorAll("[data-method]");
    this.method = null;
    this.forms = {};
    this.current = null; // the state panel shown instead of the stage, if any
    this.timer = null;
  }

  Checkout.prototype.start = function () {
    var self = this;
    Array.prototype.forEach.call(this.methodButtons, function (button) {
      button.addEventListener("click", function () {
        self.selectMethod(button.getAttribute("data-method"), true);
      });
    });
    this.selectMethod("upi", false);
    if (this.embedded) closeOnEscape(this.bridge);
    this.bridge.post("checkout_ready", { orderId: this.orderId });
  };

  Checkout.prototype.template = function (id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  };

  Checkout.prototype.formFor = function (method) {
    if (!this.forms[method]) {
      var form = this.template(method === "upi" ? "tpl-upi" : "tpl-card");
      this.wireForm(form, method);
      this.forms[method] = form;
    }
    return this.forms[method];
  };

  /* Only the chosen method's form is in the document, so its pay-button is the only one. */
  Checkout.prototype.selectMethod = function (method, focus) {
    var form = this.formFor(method);
    this.method = method;
    Array.prototype.forEach.call(this.methodButtons, function (button) {
      var active = button.getAttribute("data-method") === method;
      button.setAttribute("aria-pressed", active ? "true" : "false");
      button.classList.toggle("is-active", active);
    });
    if (this.slot.firstElementChild !== form) {
      this.slot.textContent = "";
      this.slot.appendChild(form);
    }
    if (focus) form.querySelector("input").focus();
  };

  Checkout.prototype.wireForm = function (form, method) {
    var self = this;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit(form, method);
    });
    Array.prototype.forEach.call(form.querySelectorAll("input"), function (input) {
      // After a first error, re-check as the buyer corrects the field.
      input.addEventListener("input", function (event) {
        if (input.id === "card-number") formatCardNumber(input, form.querySelector("#card-network"));
        if (input.id === "card-expiry") formatExpiry(input, event);
        if (input.getAttribute("aria-invalid") === "true") {
          var check = validators[input.id];
          if (check && !check(input.value.trim())) setFieldError(input, "");
        }
      });
    });
  };

  Checkout.prototype.requestBody = function (form, method) {
    if (method === "upi") {
      return { order_id: this.orderId, method: "upi", vpa: form.querySelector("#vpa").value.trim() };
    }
    var expiry = parseExpiry(form.querySelector("#card-expiry").value);
    var card = {
      number: cardDigits(form.querySelector("#card-number").value),
      expiry_month: String(expiry.month),
      expiry_year: String(expiry.year),
      cvv: form.querySelector("#card-cvv").value.trim(),
    };
    var name = form.querySelector("#card-name").value.trim();
    if (name) card.holder_name = name;
    return { order_id: this.orderId, method: "card", card: card };
  };

  Checkout.prototype.submit = function (form, method) {
    var self = this;
    if (this.busy || !validateForm(form)) return;
    var button = form.querySelector("[data-test-id=pay-button]");
    this.busy = true;
    button.disabled = true;
    button.classList.add("is-busy");
    var key = idempotencyKey();
    fetch("/api/v1/payments/public", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify(this.requestBody(form, method)),
      credentials: "omit",
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            return { status: response.status, body: body };
          });
      })
      .then(function (result) {
        if (method === "card") {
          form.querySelector("#card-cvv").value = ""; // never keep a CVV around
        }
        if (result.status === 201 && result.body.id) {
          self.processing(result.body);
          return;
        }
        var error = result.body.error || {};
        var inputId = FIELD_INPUTS[error.field];
        var input = inputId && form.querySelector("#" + inputId);
        if (result.status === 400 && input) {
          setFieldError(input, error.description || "Please check this field");
          input.focus();
          return;
        }
        self.failed(null, error.description || "Payment could not be processed", error.code);
      })
      .catch(function () {
        self.failed(
          null,
          "We could not reach the payment server. Check your connection and try again.",
          "NETWORK_ERROR"
        );
      })
      .then(function () {
        self.busy = false;
        button.disabled = false;
        button.classList.remove("is-busy");
      });
  };

  /* Show a state panel instead of the method chooser and form. */
  Checkout.prototype.show = function (panel) {
    if (this.current) this.current.remove();
    if (this.stage.parentNode) this.stage.remove();
    this.current = panel;
    this.panel.insertBefore(panel, this.panel.firstChild);
    panel.querySelector(".state-title").focus({ preventScroll: true });
  };

  Checkout.prototype.processing = function (payment) {
    var panel = this.template("tpl-processing");
    var hint =
      payment.method === "upi"
        ? "Approve the request sent to " + (payment.vpa || "your UPI app") + "."
        : "Confirming with your bank.";
    panel.querySelector("[data-hint]").textContent = hint + " Please don't close this window.";
    this.show(panel);
    this.poll(payment.id, Date.now());
  };

  Checkout.prototype.poll = function (paymentId, started) {
    var self = this;
    this.timer = window.setTimeout(function () {
      fetch("/api/v1/payments/" + encodeURIComponent(paymentId) + "/public", {
        credentials: "omit",
        cache: "no-store",
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (payment) {
          if (payment && payment.status === "success") return self.succeeded(payment);
          if (payment && payment.status === "failed") {
            return self.failed(payment, payment.error_description, payment.error_code);
          }
          // Still pending, or a hiccup reading it: the payment goes on server-side, keep asking.
          if (Date.now() - started > SLOW_AFTER_MS && self.current) {
            self.current.querySelector("[data-hint]").textContent =
              "This is taking longer than usual. Please keep this window open.";
          }
          self.poll(paymentId, started);
        })
        .catch(function () {
          self.poll(paymentId, started);
        });
    }, POLL_INTERVAL_MS);
  };

  Checkout.prototype.summary = function (payment) {
    return {
      paymentId: payment.id,
      orderId: payment.order_id,
      amount: payment.amount,
      currency: payment.currency,
      method: payment.method,
      status: payment.status,
    };
  };

  Checkout.prototype.succeeded = function (payment) {
    var panel = this.template("tpl-success");
    panel.querySelector("[data-test-id=payment-id]").textContent = payment.id;
    this.show(panel);
    this.bridge.post("payment_success", this.summary(payment));
  };

  Checkout.prototype.failed = function (payment, description, code) {
    var self = this;
    var panel = this.template("tpl-error");
    var message = description || "Payment could not be processed";
    panel.querySelector("[data-test-id=error-message]").textContent = message;
    panel.querySelector("[data-test-id=retry-button]").addEventListener("click", function () {
      self.retry();
    });
    this.show(panel);
    var data = payment ? this.summary(payment) : { orderId: this.orderId, amount: this.amount };
    data.error = { code: code || "PAYMENT_FAILED", description: message };
    this.bridge.post("payment_failed", data);
  };

  Checkout.prototype.retry = function () {
    if (this.current) this.current.remove();
    this.current = null;
    this.panel.insertBefore(this.stage, this.panel.firstChild);
    this.selectMethod(this.method || "upi", true);
  };

  // -- notices (unknown order, paid order, wrong key) ----------------------------------------

  function startNotice(root) {
    var embedded = root.getAttribute("data-embedded") === "true";
    var bridge = makeBridge(embedded);
    if (embedded) closeOnEscape(bridge);
    var orderId = root.getAttribute("data-order-id") || null;
    bridge.post("checkout_ready", { orderId: orderId });
    bridge.post("payment_failed", {
      orderId: orderId,
      error: {
        code: root.getAttribute("data-notice-code"),
        description: root.getAttribute("data-notice-description"),
      },
    });
  }

  /* The SDK's key travels in the frame name, not the iframe URL (which the contract fixes):
   * reload once with it in the query so the server checks it against the order's merchant. */
  function ensureKeyChecked(embedded) {
    if (!embedded || window.parent === window) return false;
    var key = bridgeInfo().key;
    var params = new URLSearchParams(window.location.search);
    if (!key || params.has("key")) return false;
    params.set("key", key);
    window.location.replace(window.location.pathname + "?" + params.toString());
    return true;
  }

  var checkoutRoot = document.querySelector("[data-test-id=checkout-container]");
  var noticeRoot = document.querySelector("[data-notice-code]");
  if (checkoutRoot) {
    if (ensureKeyChecked(checkoutRoot.getAttribute("data-embedded") === "true")) return;
    new Checkout(checkoutRoot).start();
  } else if (noticeRoot) {
    if (ensureKeyChecked(noticeRoot.getAttribute("data-embedded") === "true")) return;
    startNotice(noticeRoot);
  }
})();
