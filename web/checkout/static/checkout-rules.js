/*
 * The checkout's input rules: the same checks as paygate/services/validation.py (VPA, Luhn,
 * MM/YY expiry, CVV), card network detection and as-you-type formatting. Pure functions, no
 * DOM: tests/browser/test_checkout_rules.py runs them in Node against the server's rules.
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.PaygateRules = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var VPA_PATTERN = /^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$/;
  var NETWORK_NAMES = { visa: "VISA", mastercard: "Mastercard", amex: "AMEX", rupay: "RuPay" };

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

  /** What the server strips from a card number: spaces and dashes. */
  function cardDigits(value) {
    return value.replace(/[ -]/g, "");
  }

  /** CONTRACT.md section 2, in this order; "" for unknown. */
  function cardNetwork(digits) {
    var two = digits.slice(0, 2);
    if (digits.charAt(0) === "4") return "visa";
    if (two >= "51" && two <= "55") return "mastercard";
    if (two === "34" || two === "37") return "amex";
    if (two === "60" || two === "65" || (two >= "81" && two <= "89")) return "rupay";
    return "";
  }

  /** "MM/YY" (or "MM/YYYY") as {month, year with century}; null when it is not that shape. */
  function parseExpiry(value) {
    var match = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(value);
    if (!match) return null;
    var year = parseInt(match[2], 10);
    return { month: parseInt(match[1], 10), year: year < 100 ? year + 2000 : year };
  }

  // Each rule takes the trimmed field value and returns "" or the message to show.
  var rules = {
    vpa: function (value) {
      if (!value) return "Enter your UPI ID";
      if (value.length > 255 || !VPA_PATTERN.test(value)) {
        return "Enter a valid UPI ID, like name@bank";
      }
      return "";
    },
    cardNumber: function (value) {
      var digits = cardDigits(value);
      if (!digits) return "Enter your card number";
      if (!/^[0-9]{13,19}$/.test(digits) || !luhnOk(digits)) return "Enter a valid card number";
      return "";
    },
    expiry: function (value, today) {
      var expiry = parseExpiry(value);
      var now = today || new Date();
      var year = now.getUTCFullYear();
      var month = now.getUTCMonth() + 1;
      if (!expiry || expiry.month < 1 || expiry.month > 12) {
        return "Enter a valid expiry (MM/YY)";
      }
      if (expiry.year < year || (expiry.year === year && expiry.month < month)) {
        return "This card has expired";
      }
      return "";
    },
    cvv: function (value) {
      return /^[0-9]{3,4}$/.test(value) ? "" : "Enter the 3 or 4 digit CVV";
    },
    holderName: function (value) {
      return value.length > 255 ? "The name must be at most 255 characters" : "";
    },
  };

  /** Card digits grouped as printed (4-6-5 for Amex, else fours) and the network. */
  function formatCardNumber(value) {
    var digits = value.replace(/\D/g, "").slice(0, 19);
    var network = cardNetwork(digits);
    var groups = network === "amex" ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var parts = [];
    var at = 0;
    for (var i = 0; i < groups.length && at < digits.length; i++) {
      parts.push(digits.slice(at, at + groups[i]));
      at += groups[i];
    }
    return { text: parts.join(" "), network: network, label: NETWORK_NAMES[network] || "" };
  }

  /** Typing "1230" gives "12/30"; a first digit above 1 is a month: "4" gives "04". */
  function formatExpiry(value) {
    var digits = value.replace(/\D/g, "").slice(0, 4);
    if (digits.length === 1 && digits > "1") digits = "0" + digits;
    return digits.length > 2 ? digits.slice(0, 2) + "/" + digits.slice(2) : digits;
  }

  return {
    VPA_PATTERN: VPA_PATTERN,
    luhnOk: luhnOk,
    cardDigits: cardDigits,
    cardNetwork: cardNetwork,
    parseExpiry: parseExpiry,
    rules: rules,
    formatCardNumber: formatCardNumber,
    formatExpiry: formatExpiry,
  };
});
