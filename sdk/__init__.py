"""The embeddable checkout SDK (checkout.js), served by the checkout app."""
