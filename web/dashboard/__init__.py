"""The merchant dashboard (:3000): server-rendered pages over the services layer."""
