"""The merchant REST API: ``create_app(ctx)`` (app.py), one resource module per family, the
middleware and the error serializer that produce the contract's envelopes."""
