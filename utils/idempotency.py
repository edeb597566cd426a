"""Idempotency keys of automated sends, and the tag that recognizes our own echoes.

A message stored with an idempotency key is unique per key (messages.idempotency_key), so a
retried run that sends "the same" reply finds the stored one instead of messaging the customer
twice. The keys answering one inbound message, in the order a run takes them:

- `handoff:<inbound id>`   the customer told that a person will reply (hand-off notice)
- `auto:<inbound id>`      the first automated reply (AI answer, workflow text, ...)
- `auto:<inbound id>:<n>`  the n-th automated reply of the same run (n >= 2)
- `ai-draft:<inbound id>`  the AI's answer kept as a draft for approval in Slack (not sent)

A workflow action run on an integration (crm_sync, create_ticket, track_event) is recorded
once per `wf:<workflow id|default>:<trigger>:<inbound id>:<action index>` (action_key), so a
retried run of the same message never creates a second contact, ticket or event.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator

AUTO = "auto"
HANDOFF = "handoff"
AI_DRAFT = "ai-draft"
ECHO_TAG_PREFIX = "dana:"


def idempotency_key(kind: str, inbound_id: str, n: int = 1) -> str:
    """The key of the n-th send of `kind` (AUTO, HANDOFF, AI_DRAFT) answering an inbound message."""
    return f"{kind}:{inbound_id}" if n <= 1 else f"{kind}:{inbound_id}:{n}"


def action_key(workflow_id: str | None, message_id: str | None, trigger: str,
               action_index: int) -> str:
    """The idempotency key of one action of one workflow run for one inbound message.

    Without a message (no such trigger today) the key is unique per call: nothing to retry.
    """
    if not message_id:
        message_id = f"once-{uuid.uuid4().hex}"
    return f"wf:{workflow_id or 'default'}:{trigger}:{message_id}:{action_index}"


def reply_keys(inbound_id: str) -> Iterator[str]:
    """Every key an automated run may use for one inbound message, in send order (endless)."""
    yield idempotency_key(HANDOFF, inbound_id)
    n = 1
    while True:
        yield idempotency_key(AUTO, inbound_id, n)
        n += 1


def echo_tag(message_id: str) -> str:
    """The metadata sent with a message so that its echo from Meta is recognized as ours."""
    return f"{ECHO_TAG_PREFIX}{message_id}"


def message_id_from_echo_tag(tag: str) -> str | None:
    """Our message id from an echo's metadata, or None when the echo is not ours."""
    return tag[len(ECHO_TAG_PREFIX):] if tag.startswith(ECHO_TAG_PREFIX) else None
