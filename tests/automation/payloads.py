"""Builders for real-shaped Meta webhook payloads, and Meta's samples.

The samples are in tests/fixtures/meta (copies of the project's docs-shaped Meta samples, see
the README there): tests never read outside the repository.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "tests" / "fixtures" / "meta"

PAGE_ID = "104578263458921"
PSID = "7354923876541234"
IG_ID = "17841405309211844"
IGSID = "1122334455667788"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
WA_ID = "16505551234"
T_MS = 1788262411503          # 2026-09-01T11:33:31.503Z
T_S = "1788263411"            # 2026-09-01T11:50:11Z


def sample(name: str) -> dict:
    return json.loads((META / name).read_text(encoding="utf-8"))


def samples(prefix: str) -> list[str]:
    """Names of the webhook samples for one product (Send API bodies excluded)."""
    return sorted(p.name for p in META.glob(f"{prefix}_*.json"))


def messaging(obj: str, account_id: str, *items: dict, time=T_MS, key: str = "messaging") -> dict:
    """A Messenger/Instagram delivery: one entry holding `items` under `key` (messaging|standby)."""
    return {"object": obj, "entry": [{"id": account_id, "time": time, key: list(items)}]}


def item(sender: str, recipient: str, timestamp=T_MS, **event) -> dict:
    """One messaging[] item: sender, recipient, timestamp and the event object(s)."""
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": timestamp,
        **event,
    }


def wa(
    *,
    messages=None,
    statuses=None,
    contacts=None,
    field: str = "messages",
    phone_number_id: str = PHONE_NUMBER_ID,
    extra: dict | None = None,
) -> dict:
    """A WhatsApp delivery with one change; omitted lists are left out of `value` entirely."""
    value: dict = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    }
    for key, val in (("contacts", contacts), ("messages", messages), ("statuses", statuses)):
        if val is not None:
            value[key] = val
    value.update(extra or {})
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": field}]}],
    }


def wa_contact(name: str = "Sheena Nelson", wa_id: str | None = WA_ID, **extra) -> dict:
    contact: dict = {"profile": {"name": name}, **extra}
    if wa_id is not None:
        contact["wa_id"] = wa_id
    return contact


def wa_message(
    mtype: str, wamid: str = "wamid.TEST1", sender: str | None = WA_ID, timestamp=T_S, **body
) -> dict:
    msg: dict = {"id": wamid, "timestamp": timestamp, "type": mtype, **body}
    if sender is not None:
        msg["from"] = sender
    return msg
