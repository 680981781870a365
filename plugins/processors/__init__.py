"""Built-in payment processors."""
