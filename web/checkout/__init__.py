"""The hosted checkout (:3001): the buyer's payment page and the embeddable checkout.js SDK."""
