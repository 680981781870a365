"""Paygate's web front ends: the merchant dashboard (:3000) and the hosted checkout (:3001)."""
