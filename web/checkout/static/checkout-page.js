/*
 * Paygate hosted checkout: method choice (the methods the merchant's processor takes), inline
 * accessible errors before any request (rules in checkout-rules.js), payment creation, status
 * polling every 2 s, processing / success / error states, the buyer's detour when the
 * processor asks for it (next_action: 3-D Secure, a bank's page; the page, or the SDK's frame,
 * goes there and comes back through the return URL to this page with ?payment_id=, which
 * follows that payment to its outcome), and, when embedded by checkout.js, messages to the
 * merchant page (checkout-bridge.js).
 *
 * Card numbers and CVVs only ever leave this page in the body of the payment request.
 */
(function (window, document, Rules, Bridge) {
  "use strict";

  var POLL_INTERVAL_MS = 2000;
  var SLOW_AFTER_MS = 60000;
  // Input id -> its rule, and the server's error.field -> the input to show it on.
  var INPUT_RULES = {
    vpa: Rules.rules.vpa,
    "card-number": Rules.rules.cardNumber,
    "card-expiry": Rules.rules.expiry,
    "card-cvv": Rules.rules.cvv,
    "card-name": Rules.rules.holderName,
  };
  var FIELD_INPUTS = {
    vpa: "vpa",
    "card.number": "card-number",
    "card.expiry": "card-expiry",
    "card.cvv": "card-cvv",
    "card.holder_name": "card-name",
  };

  function each(list, fn) {
    Array.prototype.forEach.call(list, fn);
  }

  function setFieldError(input, message) {
    var field = input.closest(".field");
    var error = document.getElementById(input.id + "-error");
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    field.classList.toggle("has-error", !!message);
    if (error) error.textContent = message;
  }

  /** Check every field of a form, show inline errors, focus the first; true when all pass. */
  function validateForm(form) {
    var firstInvalid = null;
    each(form.querySelectorAll("input"), function (input) {
      var rule = INPUT_RULES[input.id];
      var message = rule ? rule(input.value.trim()) : "";
      setFieldError(input, message);
      if (message && !firstInvalid) firstInvalid = input;
    });
    if (firstInvalid) firstInvalid.focus();
    return !firstInvalid;
  }

  function formatInput(input, event) {
    if (input.id === "card-number") {
      var card = Rules.formatCardNumber(input.value);
      if (card.text !== input.value) input.value = card.text;
      var badge = input.form.querySelector("#card-network");
      badge.textContent = card.label;
      badge.className = "network-badge" + (card.network ? " network-" + card.network : "");
    } else if (input.id === "card-expiry") {
      if (event.inputType && event.inputType.indexOf("delete") === 0) return;
      var expiry = Rules.formatExpiry(input.value);
      if (expiry !== input.value) input.value = expiry;
    }
  }

  function idempotencyKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var key = "chk_";
    for (var i = 0; i < bytes.length; i++) key += ("0" + bytes[i].toString(16)).slice(-2);
    return key;
  }

  // -- the checkout ----------------------------------------------------------------------------

  function Checkout(root, bridge) {
    this.root = root;
    this.orderId = root.getAttribute("data-order-id");
    this.amount = parseInt(root.getAttribute("data-amount"), 10);
    this.bridge = bridge;
    this.panel = document.getElementById("pay-panel");
    this.stage = document.getElementById("pay-stage");
    this.slot = document.getElementById("form-slot");
    this.methodButtons = root.querySelectorAll("[data-method]");
    this.firstMethod = this.methodButtons.length
      ? this.methodButtons[0].getAttribute("data-method")
      : "upi";
    this.resumeId = root.getAttribute("data-payment-id");
    this.method = null;
    this.forms = {};
    this.current = null; // the state panel shown instead of the stage, if any
    this.timer = null;
  }

  Checkout.prototype.start = function () {
    var self = this;
    each(this.methodButtons, function (button) {
      button.addEventListener("click", function () {
        self.selectMethod(button.getAttribute("data-method"), true);
      });
    });
    this.selectMethod(this.firstMethod, false);
    this.bridge.post("checkout_ready", { orderId: this.orderId });
    if (this.resumeId) this.processing({ id: this.resumeId }); // back from the processor
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
    each(this.methodButtons, function (button) {
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
    each(form.querySelectorAll("input"), function (input) {
      input.addEventListener("input", function (event) {
        formatInput(input, event);
        // After an error, clear it as soon as the buyer has corrected the field.
        var rule = INPUT_RULES[input.id];
        if (input.getAttribute("aria-invalid") === "true" && rule && !rule(input.value.trim())) {
          setFieldError(input, "");
        }
      });
    });
  };

  Checkout.prototype.requestBody = function (form, method) {
    if (method === "upi") {
      return { order_id: this.orderId, method: "upi", vpa: form.querySelector("#vpa").value.trim() };
    }
    var expiry = Rules.parseExpiry(form.querySelector("#card-expiry").value);
    var card = {
      number: Rules.cardDigits(form.querySelector("#card-number").value),
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
          if (payment && self.detour(payment.next_action)) return;
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

  /* The processor needs the buyer first (3-D Secure, the bank's page): go there, the whole
   * page when hosted, this frame inside the SDK's modal (its name, and so the channel to the
   * merchant page, survives the trip). The buyer comes back through the return URL. */
  Checkout.prototype.detour = function (action) {
    if (!action || action.type !== "redirect" || !/^https?:\/\//i.test(action.url || "")) {
      return false;
    }
    if (this.current) {
      this.current.querySelector("[data-hint]").textContent =
        "Taking you to your bank to verify this payment...";
    }
    window.location.assign(action.url);
    return true;
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
    this.selectMethod(this.method || this.firstMethod, true);
  };

  // -- notices (unknown order, paid order, wrong key) ----------------------------------------

  /* The merchant's onFailure hears why this order cannot be paid. */
  function startNotice(root, bridge) {
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

  var checkoutRoot = document.querySelector("[data-test-id=checkout-container]");
  var noticeRoot = document.querySelector("[data-notice-code]");
  var root = checkoutRoot || noticeRoot;
  if (!root) {
    // Another page of the checkout app in the SDK's frame (a processor's challenge page):
    // Escape still closes the modal.
    Bridge.connect(false);
    return;
  }
  var bridge = Bridge.connect(root.getAttribute("data-embedded") === "true");
  if (Bridge.checkKey(bridge)) return;
  root.hidden = false; // hidden while it might still reload with the SDK's key
  if (checkoutRoot) new Checkout(checkoutRoot, bridge).start();
  else startNotice(noticeRoot, bridge);
})(window, document, window.PaygateRules, window.PaygateBridge);
