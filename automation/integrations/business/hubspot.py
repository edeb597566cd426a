"""HubSpot: the customer as a CRM contact, the conversation as a note on it.

On hubspot-api-client (its host is the HUBSPOT_API_URL setting, so tests point it at a
loopback fake), with a private app's access token. `check()` reads one contact (the
`crm.objects.contacts.read` scope). `crm_sync()` upserts the contact, never a duplicate:

1. the HubSpot id Dana kept from an earlier sync -> update that contact (unless deleted);
2. else a search by e-mail or phone (WhatsApp numbers are phones) -> update the one found;
3. else create it (a 409 "already exists", another writer's race, updates that one);

then, unless the workflow says not to, logs the transcript as a note associated with it.
Within one action run (its retries included) a contact made once is never made again. A
customer with neither e-mail nor phone (Messenger, Instagram) can only be found again by
the id Dana keeps, so a run killed right after HubSpot created the contact may leave one
to merge by hand.

Failures become IntegrationError (services/integrations retries them; 401/403 set the
integration's status to `error`); nothing here sleeps or retries.
"""
from __future__ import annotations

import html
import json
import re
from datetime import datetime, timezone
from typing import ClassVar

from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import (
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.notes import ApiException as NotesApiException
from hubspot.crm.objects.notes import AssociationSpec, PublicAssociationsForObject, PublicObjectId
from hubspot.crm.objects.notes import (
    SimplePublicObjectInputForCreate as NoteInput,
)
from pydantic import Field
from urllib3.exceptions import HTTPError as Urllib3Error

from automation.integrations.base import (
    ActionRequest,
    IntegrationCheckFailed,
    IntegrationConnector,
    IntegrationError,
    contact_names,
    contact_phone,
    http_error,
)
from automation.integrations.catalogue import SECRET
from automation.integrations.catalogue import HubSpotConfig as CatalogueHubSpotConfig

TIMEOUT_SECONDS = 10
NOTE_TO_CONTACT = 202        # HubSpot-defined association type: note -> contact
MAX_NOTE_CHARS = 60000       # hs_note_body holds 65,536 characters
_API_ERRORS = (ContactsApiException, NotesApiException)
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class HubSpotConfig(CatalogueHubSpotConfig):
    """The catalogue's HubSpot config, with the token's format."""

    access_token: str = Field(
        min_length=8, max_length=500, pattern=r"^[!-~]+$", json_schema_extra=SECRET,
        description="a private app's access token (pat-…) with the scopes "
                    "crm.objects.contacts.read and crm.objects.contacts.write")


def _reason(exc: Exception) -> str:
    """HubSpot's own message from an ApiException body (never the headers or the token)."""
    body = getattr(exc, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    return (message or getattr(exc, "reason", None) or type(exc).__name__)[:300]


def _error(exc: Exception) -> IntegrationError:
    if isinstance(exc, _API_ERRORS):
        status = getattr(exc, "status", None) or None
        return http_error("HubSpot", status, _reason(exc), getattr(exc, "headers", None))
    return http_error("HubSpot", None, type(exc).__name__)




def contact_properties(contact: dict) -> dict:
    """HubSpot contact properties from our contact (only what we know: nothing is blanked)."""
    first, last = contact_names(contact)
    props = {"firstname": first, "lastname": last, "email": contact.get("email"),
             "phone": contact_phone(contact)}
    return {k: v for k, v in props.items() if v}


def note_body(request: ActionRequest) -> str:
    """The note: where the conversation happened, its link and the transcript, as HTML."""
    platform = (request.conversation.get("platform") or "").capitalize()
    lines = [f"<p><strong>Conversation on {html.escape(platform)} (Dana)</strong>"]
    if request.link:
        lines.append(f'<br><a href="{html.escape(request.link)}">'
                     f"{html.escape(request.link)}</a>")
    lines.append("</p><p>")
    lines.append("<br>".join(html.escape(line)
                             for line in request.transcript_text().splitlines()))
    lines.append("</p>")
    return "".join(lines)[:MAX_NOTE_CHARS]


class HubSpotConnector(IntegrationConnector):
    """A HubSpot portal (private app token); crm_sync upserts the contact and adds a note."""

    type: ClassVar[str] = "hubspot"
    name: ClassVar[str] = "HubSpot"
    category: ClassVar[str] = "crm"
    config_model = HubSpotConfig
    secret_fields = frozenset({"access_token"})
    operations = frozenset({"crm_sync"})

    def __init__(self, config: HubSpotConfig, settings) -> None:
        """A client on HUBSPOT_API_URL; no retries inside the client (the service retries)."""
        super().__init__(config, settings)
        self.client = HubSpot(access_token=config.access_token,
                              host=settings.HUBSPOT_API_URL.rstrip("/"))
        # contacts this connector made, per action run: a retried attempt never makes another
        self._made: dict[str, str] = {}

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, _request_timeout=TIMEOUT_SECONDS, **kwargs)
        except (*_API_ERRORS, Urllib3Error, OSError) as exc:
            raise _error(exc) from None

    def check(self) -> str:
        """Read one contact: proves the token and its contacts scope."""
        try:
            self._call(self.client.crm.contacts.basic_api.get_page, limit=1)
        except IntegrationError as exc:
            raise IntegrationCheckFailed(str(exc)) from None
        return "HubSpot: contacts readable"

    # ------------------------------------------------------------------ crm_sync

    def crm_sync(self, request: ActionRequest) -> dict:
        """Upsert the contact (kept id, else search, else create); log the conversation."""
        contact = request.contact
        props = contact_properties(contact)
        kept = ((contact.get("integration_refs") or {}).get(self.type) or {}).get("id")
        contact_id = self._made.get(request.idempotency_key)
        status = "updated" if contact_id is None else "created"
        if contact_id is None and kept and self._update(str(kept), props):
            contact_id = str(kept)
        if contact_id is None:
            contact_id = self._search(props)
            if contact_id is not None:
                self._update(contact_id, props)
        if contact_id is None:
            contact_id, status = self._create(props)
            self._made[request.idempotency_key] = contact_id
        result = {"status": status, "external_id": contact_id,
                  "refs": {"contact": {"id": contact_id}}}
        if request.params.get("log_conversation", True) and request.transcript:
            result["note_id"] = self._note(contact_id, request)
        return result

    def _update(self, contact_id: str, props: dict) -> bool:
        """Update a contact; False when HubSpot has no such contact (any more)."""
        try:
            self._call(self.client.crm.contacts.basic_api.update, contact_id,
                       simple_public_object_input=SimplePublicObjectInput(properties=props))
        except IntegrationError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True

    def _search(self, props: dict) -> str | None:
        groups = [FilterGroup(filters=[Filter(property_name=name, operator="EQ", value=value)])
                  for name, value in (("email", props.get("email")),
                                      ("phone", props.get("phone")),
                                      ("mobilephone", props.get("phone"))) if value]
        if not groups:
            return None
        found = self._call(self.client.crm.contacts.search_api.do_search,
                           public_object_search_request=PublicObjectSearchRequest(
                               filter_groups=groups, properties=["email", "phone"], limit=2))
        return str(found.results[0].id) if found.results else None

    def _create(self, props: dict) -> tuple[str, str]:
        try:
            made = self._call(self.client.crm.contacts.basic_api.create,
                              simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                                  properties=props, associations=[]))
        except IntegrationError as exc:
            existing = _EXISTING_ID.search(str(exc))
            if "HTTP 409" in str(exc) and existing:  # created meanwhile by another writer
                self._update(existing.group(1), props)
                return existing.group(1), "updated"
            raise
        return str(made.id), "created"

    def _note(self, contact_id: str, request: ActionRequest) -> str:
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        note = self._call(self.client.crm.objects.notes.basic_api.create,
                          simple_public_object_input_for_create=NoteInput(
                              properties={"hs_note_body": note_body(request),
                                          "hs_timestamp": now.replace("+00:00", "Z")},
                              associations=[PublicAssociationsForObject(
                                  to=PublicObjectId(id=contact_id),
                                  types=[AssociationSpec(association_category="HUBSPOT_DEFINED",
                                                         association_type_id=NOTE_TO_CONTACT)])]))
        return str(note.id)
