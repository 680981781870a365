"""Paygate's built-in plugins: ordinary plugins that ship in the same distribution."""
