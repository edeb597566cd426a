"""The baseline for bench/webhooks.py: a bare Flask endpoint in Dana's webhook URL shape that
only reads the raw body, parses the same JSON and answers 200.

No signature check, no database, no extensions, no middleware: what is left is the cost of
Flask + gunicorn receiving a delivery. Run under gunicorn as `bench.baseline_webhook:app`.
"""
from __future__ import annotations

import json

from flask import Flask, jsonify, request


def bare_app(name: str) -> Flask:
    """A Flask app with nothing but the readiness check the bench waits for (GET /health)."""
    bare = Flask(name)
    bare.json.sort_keys = False
    bare.add_url_rule("/health", "health", lambda: {"status": "ok"})
    return bare


app = bare_app(__name__)


@app.post("/webhooks/<platform>")
def receive(platform: str):
    raw = request.get_data(cache=True)
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return jsonify({"error": {"code": "invalid_json",
                                  "message": "The body is not a JSON object."}}), 400
    return {"status": "received", "event_id": len(payload.get("entry") or ())}
