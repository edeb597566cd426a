"""Salesforce: the customer as a Lead (or a Contact), the conversation as a completed Task on
it, and a Case with the transcript when a workflow opens a ticket on Salesforce.

On simple-salesforce with the org's `instance_url` and an OAuth access token (API version:
the SALESFORCE_API_VERSION setting). `check()` reads the org's limits (`/limits`: any
authenticated user with API access). `crm_sync()` upserts by an External ID field that holds
Dana's contact id (`external_id_field`, default `Dana_Contact_Id__c`, created once on the
Lead or Contact object): the record is read by that id and updated with what Dana knows
(nothing blanked), or else upserted with it (a PATCH on the external id, so two writers, a
retry, or a run killed mid-call still make one record). `create_ticket()` opens a Case
(subject, transcript, origin, priority; linked to the Contact when the org syncs Contacts).

The instance_url must be on a Salesforce domain (SALESFORCE_ALLOWED_HOSTS): the token is
never sent anywhere else. Failures become IntegrationError (services/integrations retries
them, honouring Retry-After; 401 sets the integration's status to `error`).
"""
from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import quote, urlparse

import requests
from pydantic import Field
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

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
from automation.integrations.catalogue import SalesforceConfig as CatalogueSalesforceConfig

TIMEOUT_SECONDS = 10
MAX_DESCRIPTION = 32000          # a Task's or Case's Description holds 32,000 characters
# 403s that a later attempt may pass (the org's daily API limit, server busy)
TRANSIENT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})
PRIORITIES = {"low": "Low", "normal": "Medium", "high": "High", "urgent": "High"}


class SalesforceConfig(CatalogueSalesforceConfig):
    """The catalogue's Salesforce config, with what to sync to and how to find it again."""

    instance_url: str = Field(
        pattern=r"^https://[A-Za-z0-9.-]+(:\d{1,5})?/?$", max_length=300,
        description="your org's My Domain URL, e.g. https://acme.my.salesforce.com")
    access_token: str = Field(min_length=8, max_length=2000, pattern=r"^[!-~]+$",
                              json_schema_extra=SECRET,
                              description="an OAuth access token of a connected app (scope api)")
    object: Literal["Lead", "Contact"] = Field(
        default="Lead", description="what crm_sync upserts: a Lead (default) or a Contact")
    external_id_field: str = Field(
        default="Dana_Contact_Id__c", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,37}__c$",
        description="a custom Text field of that object marked 'External ID' (and unique) "
                    "that holds Dana's contact id")
    lead_company: str = Field(default="Unknown", min_length=1, max_length=255,
                              description="a new Lead's Company (required by Salesforce)")
    case_origin: str = Field(default="Web", min_length=1, max_length=40,
                             description="the Origin of Cases Dana opens")


class _Session(requests.Session):
    """A requests session with a timeout on every call that remembers the last response
    (simple-salesforce's exceptions carry no headers; a 429's Retry-After is read here).
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_response: requests.Response | None = None
        self.hooks["response"].append(self._keep)

    def _keep(self, response, *args, **kwargs):
        self.last_response = response
        return response

    def request(self, method, url, **kwargs):  # noqa: D102 - requests' own signature
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        self.last_response = None
        return super().request(method, url, **kwargs)


def host_allowed(instance_url: str, allowed: list[str]) -> bool:
    """Is the instance_url's host one of `allowed`, or under one of them?"""
    host = (urlparse(instance_url).hostname or "").lower().rstrip(".")
    return any(host == a.lower() or host.endswith("." + a.lower().lstrip(".")) for a in allowed)


def _reason(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) from Salesforce's error list (never the token)."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or ""), str(content[0].get("message") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or ""), str(content.get("message") or "")
    return "", str(content or "")[:200]




class SalesforceConnector(IntegrationConnector):
    """A Salesforce org; crm_sync upserts a Lead/Contact, create_ticket opens a Case."""

    type: ClassVar[str] = "salesforce"
    name: ClassVar[str] = "Salesforce"
    category: ClassVar[str] = "crm"
    config_model = SalesforceConfig
    secret_fields = frozenset({"access_token"})
    operations = frozenset({"crm_sync", "create_ticket"})

    def __init__(self, config: SalesforceConfig, settings) -> None:
        """Keep the config; the client is made on first use (after the host is checked)."""
        super().__init__(config, settings)
        self._session = _Session()
        self._client: Salesforce | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Salesforce:
        """simple-salesforce on the org, refused before any call off a Salesforce domain."""
        if self._client is None:
            allowed = list(getattr(self.settings, "SALESFORCE_ALLOWED_HOSTS", None) or [])
            if not host_allowed(self.config.instance_url, allowed):
                raise IntegrationError(
                    "Salesforce: instance_url must be your org's Salesforce domain "
                    f"(allowed: {', '.join(allowed) or 'none'})", permanent=True)
            self._client = Salesforce(instance_url=self.config.instance_url.rstrip("/"),
                                      session_id=self.config.access_token,
                                      version=self.settings.SALESFORCE_API_VERSION,
                                      session=self._session)
        return self._client

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SalesforceError as exc:
            code, message = _reason(exc)
            last = self._session.last_response
            error = http_error("Salesforce", exc.status, f"{code} {message}".strip(),
                               last.headers if last is not None else None)
            if exc.status == 403 and code in TRANSIENT_CODES:
                error.permanent = False
            raise error from None
        except requests.RequestException as exc:
            raise http_error("Salesforce", None, type(exc).__name__) from None

    def _sobject(self, name: str):
        return getattr(self.client, name)

    def check(self) -> str:
        """Read the org's limits: proves the URL, the token and API access."""
        try:
            limits = self._call(self.client.limits)
        except IntegrationError as exc:
            raise IntegrationCheckFailed(str(exc)) from None
        daily = (limits or {}).get("DailyApiRequests") or {}
        if "Remaining" in daily:
            return f"Salesforce: {daily['Remaining']} API requests left today"
        return "Salesforce: API reachable"

    # ------------------------------------------------------------------ crm_sync

    def _fields(self, contact: dict) -> dict:
        first, last = contact_names(contact)
        if first and not last:  # LastName is required: a one-word name goes there
            first, last = None, first
        fields = {"FirstName": first, "LastName": last, "Email": contact.get("email"),
                  "Phone": contact_phone(contact)}
        return {k: v for k, v in fields.items() if v}

    def _placeholder_last_name(self, contact: dict) -> str:
        platform = (contact.get("platform") or "chat").capitalize()
        return f"{platform} customer {str(contact.get('platform_user_id') or '')[-6:]}".strip()

    def crm_sync(self, request: ActionRequest) -> dict:
        """Upsert the Lead/Contact by the external id (Dana's contact id); log a Task."""
        contact = request.contact
        obj = self.config.object
        sobject = self._sobject(obj)
        field = self.config.external_id_field
        key = str(contact["id"])
        fields = self._fields(contact)
        try:
            found = self._call(sobject.get_by_custom_id, field, quote(key, safe=""))
        except IntegrationError as exc:
            if "HTTP 404" not in str(exc):
                raise
            found = None
        if found:
            record_id, status = str(found["Id"]), "updated"
            if fields:
                self._call(sobject.update, record_id, fields)
        else:
            new = {**fields, "LastName": fields.get("LastName")
                   or self._placeholder_last_name(contact)}
            if obj == "Lead":
                new["Company"] = self.config.lead_company
            response = self._call(sobject.upsert, f"{field}/{quote(key, safe='')}", new,
                                  raw_response=True)
            record_id = self._record_id(response, sobject, field, key)
            status = "created" if response.status_code == 201 else "updated"
        result = {"status": status, "external_id": record_id,
                  "refs": {"contact": {"id": record_id, "object": obj}}}
        if request.params.get("log_conversation", True) and request.transcript:
            result["activity_id"] = self._log_task(record_id, request)
        return result

    def _record_id(self, response, sobject, field: str, key: str) -> str:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if body.get("id"):
            return str(body["id"])
        found = self._call(sobject.get_by_custom_id, field, quote(key, safe=""))
        return str(found["Id"])

    def _log_task(self, record_id: str, request: ActionRequest) -> str:
        platform = (request.conversation.get("platform") or "chat").capitalize()
        description = (f"{request.link}\n\n" if request.link else "") + request.transcript_text()
        made = self._call(self._sobject("Task").create, {
            "WhoId": record_id, "Subject": f"Conversation on {platform} (Dana)",
            "Description": description[:MAX_DESCRIPTION], "Status": "Completed",
            "Priority": "Normal", "TaskSubtype": "Task"})
        return str(made["id"])

    # ------------------------------------------------------------------ create_ticket
    # The Case is the operation's last call: a failed attempt made none, so a retry makes
    # one; a retried workflow run finds the action record done and calls nothing.

    def create_ticket(self, request: ActionRequest) -> dict:
        """Open a Case with the transcript (once per action run: the service's record)."""
        contact = request.contact
        first, last = contact_names(contact)
        description = (f"{request.link}\n\n" if request.link else "") + request.transcript_text()
        case = {"Subject": (request.params.get("subject") or "Conversation")[:255],
                "Description": description[:MAX_DESCRIPTION],
                "Origin": self.config.case_origin, "Status": "New",
                "SuppliedName": " ".join(p for p in (first, last) if p) or None,
                "SuppliedEmail": contact.get("email"), "SuppliedPhone": contact_phone(contact)}
        if request.params.get("priority"):
            case["Priority"] = PRIORITIES[request.params["priority"]]
        synced = ((contact.get("integration_refs") or {}).get(self.type) or {})
        if synced.get("object") == "Contact" and synced.get("id"):
            case["ContactId"] = synced["id"]
        made = self._call(self._sobject("Case").create,
                          {k: v for k, v in case.items() if v is not None})
        case_id = str(made["id"])
        result = {"status": "created", "external_id": case_id,
                  "refs": {"conversation": {"case_id": case_id}}}
        if request.task:
            result["refs"]["task"] = {"id": case_id, "object": "Case"}
        return result
