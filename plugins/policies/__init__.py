"""Built-in refund policies (opt-in)."""
