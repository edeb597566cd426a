"""Helpers for the knowledge-base tests: create documents through the API."""
from __future__ import annotations

import io

import pytest

SHIPPING = """# Shipping

We ship to Germany, Austria, France and Spain. Standard delivery takes 3–5 business days;
express delivery arrives the next business day when you order before 2 pm.

## Costs

Standard shipping is free on orders over 50 euros, otherwise it costs 4.90 euros.

## Returns

You can return any unused item within 30 days for a full refund. Print the return label
from your account and drop the parcel at any post office.
"""

FAQ = ("Q: What are your opening hours?\nA: We are open Monday to Friday from 9 am to 6 pm "
       "and on Saturday from 10 am to 4 pm.\n\n"
       "Q: Do you have parking?\nA: Yes, there is free parking behind the shop.")


def create_doc(client, headers, **fields) -> dict:
    body = {"title": "Untitled", "content": "Some content."}
    body.update(fields)
    resp = client.post("/api/knowledge", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def upload(client, headers, filename: str, data: bytes | str, **form):
    raw = data.encode() if isinstance(data, str) else data
    return client.post("/api/knowledge/import", headers=headers,
                       data={"file": (io.BytesIO(raw), filename), **form},
                       content_type="multipart/form-data")


def search(client, headers, q: str, **params):
    resp = client.get("/api/knowledge/search", query_string={"q": q, **params}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


@pytest.fixture
def kb(client, user):
    """The user's small knowledge base: a markdown shipping page and an FAQ."""
    h = user["headers"]
    return {
        "shipping": create_doc(client, h, title="Shipping", content=SHIPPING, format="markdown",
                               tags=["shipping", "policies"]),
        "faq": create_doc(client, h, title="FAQ", content=FAQ, format="faq", tags=["faq"]),
    }
