"""The common lookup parameters a customer's message carries: order number, e-mail, phone.

Offline and rule-based, for the `lookup` workflow action (`{{entities.order_number}}`,
`{{entities.email}}`, `{{entities.phone}}`). An order number is a token with a digit that
follows an order word ("order", "Bestellung", "commande", "pedido", "#", "no."), or else a
lone run of 4 to 12 digits that is not part of the phone number or the e-mail address. A
phone has 7 to 15 digits and is given back as "+" and digits when written with a "+",
otherwise as the digits.
"""
from __future__ import annotations

import re

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_ORDER_WORD = (r"(?:order|orders|bestellung|bestellnummer|auftrag|commande|pedido|orden|"
               r"invoice|rechnung|facture|factura)")
_ORDER = re.compile(
    rf"(?i)\b{_ORDER_WORD}\b(?:\s*(?:number|nr\.?|no\.?|num(?:ber|éro|ero)?|n°|#|:|-|is|id))*"
    r"\s*#?\s*([A-Za-z]{0,4}-?\d[A-Za-z0-9-]{2,23})\b")
_HASH = re.compile(r"(?<![\w&])#\s?([A-Za-z]{0,4}-?\d[A-Za-z0-9-]{2,23})\b")
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d ().-]{5,20}\d)(?!\w)")
_DIGITS = re.compile(r"(?<![\w.@-])(\d{4,12})(?![\w@]|[.,]\d)")


def _phone(text: str) -> str | None:
    for match in _PHONE.finditer(text):
        raw = match.group(1)
        digits = re.sub(r"\D", "", raw)
        grouped = raw.startswith("+") or bool(re.search(r"[ ().-]", raw.strip()))
        if 7 <= len(digits) <= 15 and (grouped or len(digits) >= 10):
            return ("+" if raw.startswith("+") else "") + digits
    return None


def extract_entities(text: str | None) -> dict[str, str | None]:
    """{order_number, email, phone} found in the text (None for each one not found)."""
    text = (text or "")[:4000]
    email = _EMAIL.search(text)
    rest = _EMAIL.sub(" ", text)
    order = _ORDER.search(rest) or _HASH.search(rest)
    order_number = order.group(1) if order else None
    without_order = rest.replace(order_number, " ") if order_number else rest
    phone = _phone(without_order)
    if order_number is None:
        phone_digits = re.sub(r"\D", "", phone or "")
        for match in _DIGITS.finditer(rest):
            if match.group(1) not in phone_digits:
                order_number = match.group(1)
                break
    return {"order_number": order_number, "email": email.group(0) if email else None,
            "phone": phone}
