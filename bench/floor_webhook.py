"""The floors for bench/webhooks.py's pipeline mode: what any server must do to answer a
Messenger delivery, and nothing else; and that plus Dana's offline AI decision.

The floor checks the delivery's X-Hub-Signature-256 over the raw body (Dana's own check,
automation.platforms.meta_webhook.verify_signature), parses it, and makes the one
Send API call each message must cause (a pooled httpx client, as Dana's Graph client is),
then answers 200. No database, no queue, no workflow, no AI. Its rate against the bare
baseline (bench/baseline_webhook.py) in the same run is the ceiling of any design that
answers each delivery on this machine, Dana's or another: what is left between it and Dana's
pipeline is Dana's storage, automation and AI.

With FLOOR_AI=1 (and Dana's own settings in the environment, on the bench's database, and
FLOOR_AI_OWNER, the business's user id) it also takes Dana's offline AI decision for each
message before the call, as a run does for a new customer's first message
(automation.ai.response_generator: the business profile, the knowledge search, the local
provider's answer or hand-off; no earlier messages to read), and sends its
answer, or a fixed hand-off notice (bench.common.FLOOR_HANDOFF_REPLY). It stores nothing:
its rate is the ceiling of any design that answers with Dana's offline AI, whatever its
storage.

Run under gunicorn as `bench.floor_webhook:app`, with META_APP_SECRET and GRAPH_API_URL (a
loopback FakeGraph) in the environment.
"""
from __future__ import annotations

import json
import os

import httpx
from flask import jsonify, request

from automation.platforms.meta_webhook import SIGNATURE_HEADER, verify_signature
from bench.baseline_webhook import bare_app
from bench.common import FLOOR_HANDOFF_REPLY
from utils.errors import ApiError

app = bare_app(__name__)
SECRET = os.environ["META_APP_SECRET"]
SEND_URL = os.environ["GRAPH_API_URL"].rstrip("/") + "/me/messages"
client = httpx.Client(trust_env=False, timeout=5.0)
FIXED_REPLY = "Thanks for your message."

if os.environ.get("FLOOR_AI") == "1":
    from app import create_app
    from automation.ai.response_generator import ReplyContext, generate_reply
    from automation.core.business_profile import get_profile

    dana = create_app()  # the settings of the environment: the bench's Dana database
    OWNER = os.environ["FLOOR_AI_OWNER"]

    def reply_to(text: str) -> str:
        """Dana's offline AI decision for one message: its answer, or the hand-off notice."""
        with dana.app_context():
            answer = generate_reply(ReplyContext(user_id=OWNER, business=get_profile(OWNER),
                                                 conversation_id=None, message_text=text,
                                                 platform="facebook"))
        if answer.handoff or not answer.text:
            return FLOOR_HANDOFF_REPLY
        return answer.text
else:
    def reply_to(text: str) -> str:
        """No AI: the same text for every message."""
        return FIXED_REPLY


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
                    "message": {"text": reply_to(item["message"].get("text") or "")},
                }).raise_for_status()
                sent += 1
    return {"status": "received", "sent": sent}
