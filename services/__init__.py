"""Business rules as plain functions; no flask.request in here."""
