"""HTML forms for the integration types, generated from each type's config JSON schema.

One form per type: the fields, their input kinds and labels come from the config model
(`services.integrations.list_types` hands its JSON schema), so a new connector gets its form
for free. Secret fields are password inputs that are never pre-filled; left empty on an
update they keep the stored secret (the service's rule, the same as the API's).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# A few labels better than the field name turned into words.
LABELS = {"smtp_host": "SMTP host", "smtp_port": "SMTP port", "to_addresses": "To addresses",
          "from_address": "From address", "reply_to": "Reply-to address",
          "channel_id": "Channel id", "api_token": "API token", "api_secret": "API secret",
          "uri": "URI", "instance_url": "Instance URL", "measurement_id": "Measurement id"}


@dataclass
class FormField:
    """One input of an integration's form."""

    name: str
    label: str
    kind: str  # text | email | number | password | select | list | json | checkbox
    required: bool = False
    help: str = ""
    options: list[str] = field(default_factory=list)
    value: str = ""
    checked: bool = False


def _base(prop: dict) -> dict:
    """The non-null alternative of an Optional field's schema."""
    for alt in prop.get("anyOf", []):
        if alt.get("type") != "null":
            return {**prop, **alt}
    return prop


def _kind(name: str, prop: dict, secret: bool) -> tuple[str, list[str]]:
    if secret:
        return "password", []
    if "enum" in prop:
        return "select", [str(v) for v in prop["enum"]]
    type_ = prop.get("type")
    if type_ in ("integer", "number"):
        return "number", []
    if type_ == "boolean":
        return "checkbox", []
    if type_ == "array":
        return "list", []
    if type_ == "object":
        return "json", []
    return ("email" if prop.get("format") == "email" else "text"), []


def fields_of(type_info: dict, current: dict | None = None) -> list[FormField]:
    """The form's fields for a type of /api/integrations/types, filled from the stored config
    (`current`, secrets masked there and never put into an input).
    """
    schema = type_info["config_schema"]
    required = set(schema.get("required", []))
    secrets = set(type_info["secret_fields"])
    out = []
    for name, raw in schema.get("properties", {}).items():
        prop = _base(raw)
        kind, options = _kind(name, prop, name in secrets)
        hint = raw.get("description") or prop.get("description") or ""
        if kind == "list":
            hint = "; ".join(x for x in (hint, "separate them with commas") if x)
        elif kind == "json":
            hint = "; ".join(x for x in (hint, "a JSON object") if x)
        elif kind == "password":
            hint = ("stored encrypted, never shown; leave empty to keep the stored one"
                    if current and current.get("config", {}).get(name)
                    else "stored encrypted, never shown again")
        f = FormField(name=name, label=LABELS.get(name, name.replace("_", " ").capitalize()),
                      kind=kind, required=name in required, help=hint, options=options)
        value = (current or {}).get("config", {}).get(name, prop.get("default"))
        if kind == "checkbox":
            f.checked = bool(value)
        elif kind != "password" and value is not None:
            f.value = (", ".join(map(str, value)) if kind == "list"
                       else json.dumps(value) if kind == "json" else str(value))
        out.append(f)
    return out


def parse(fields: list[FormField], form) -> tuple[dict, dict[str, list[str]]]:
    """A browser's post -> (config for the service, {field: errors} the form itself found).

    Empty inputs are left out (the model's default applies; a secret keeps the stored one).
    Numbers stay strings: the config model converts and checks them.
    """
    config: dict = {}
    errors: dict[str, list[str]] = {}
    for f in fields:
        if f.kind == "checkbox":
            config[f.name] = f.name in form
            continue
        raw = (form.get(f.name) or "").strip()
        if f.kind != "password":
            f.value = raw  # shown again if the form comes back with errors
        if not raw:
            continue
        if f.kind == "list":
            config[f.name] = [x for x in (p.strip() for p in re.split(r"[,\n]", raw)) if x]
        elif f.kind == "json":
            try:
                config[f.name] = json.loads(raw)
            except ValueError as exc:
                errors[f.name] = [f"Not valid JSON: {exc}"]
        else:
            config[f.name] = raw
    return config, errors
