"""The floor for bench/webhooks.py's pipeline mode: what any server must do to answer a
Messenger delivery, and nothing else.

It checks the delivery's X-Hub-Signature-256 over the raw body (Dana's own check,
automation.platforms.meta_webhook.verify_signature), parses it, and makes the one
Send API call each message must cause (a pooled httpx client, as Dana's Graph client is),
then answers 200. No database, no queue, no workflow, no AI. Its rate against the bare
baseline (bench/baseline_webhook.py) in the same run is the ceiling of any design that
answers each delivery on this machine, Dana's or another: what is left between it and Dana's
pipeline is Dana's storage, automation and AI. Run under gunicorn as
`bench.floor_webhook:app`, with META_APP_SECRET and GRAPH_API_URL (a loopback FakeGraph) in
the environment.
"""
from __future__ import annotations

import json
import os

import httpx
from flask import jsonify, request

from automation.platforms.meta_webhook import SIGNATURE_HEADER, verify_signature
from bench.baseline_webhook import bare_app
from utils.errors import ApiError

app = bare_app(__name__)
SECRET = os.environ["META_APP_SECRET"]
SEND_URL = os.environ["GRAPH_API_URL"].rstrip("/") + "/me/messages"
client = httpx.Client(trust_env=False, timeout=5.0)


@app.post("/webhooks/<platform>")
def receive(platform: str):
    raw = request.get_data(cache=True)
    try:
        verify_signature(SECRET, raw, request.headers.get(SIGNATURE_HEADER))
    except ApiError as exc:
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
    sent = 0
    for entry in json.loads(raw).get("entry") or ():
        for item in entry.get("messaging") or ():
            if "message" in item:
                client.post(SEND_URL, json={
                    "recipient": {"id": item["sender"]["id"]}, "messaging_type": "RESPONSE",
                    "message": {"text": "Thanks for your message."}}).raise_for_status()
                sent += 1
    return {"status": "received", "sent": sent}
