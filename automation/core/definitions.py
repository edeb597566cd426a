"""The workflow definition language: a validated JSON document (trigger, conditions, actions).

These Pydantic models validate what /api/workflows accepts and are what the OpenAPI spec
documents; the engine only ever runs definitions that passed them.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from automation.core.patterns import MAX_PATTERN_LENGTH, PatternError, compile_pattern

_Platform = Literal["facebook", "instagram", "whatsapp"]


class _Strict(BaseModel):
    """Unknown fields refused; texts kept exactly as written (no stripping).

    Not utils.validation.StrictModel: its NUL check is a before-validator on every field,
    which Pydantic refuses on the `type` discriminator of these unions. The request model
    that carries a definition (WorkflowIn, a StrictModel) checks the whole of it for NULs.
    """

    model_config = ConfigDict(extra="forbid")


class Trigger(_Strict):
    """What starts the workflow: a message, a new conversation, a postback, a failed send, or
    a hand-off (a new hand-off task opened for the conversation, by the AI or a workflow).
    """

    type: Literal["message_received", "conversation_opened", "postback", "message_failed",
                  "handoff"]
    payload: str | None = Field(default=None, max_length=1000,
                                description="postback only: match this payload exactly")


# ------------------------------------------------------------------------- conditions

class PlatformCondition(_Strict):
    """Matches when the conversation is on one of these platforms."""

    type: Literal["platform"]
    platforms: list[_Platform] = Field(min_length=1)


class KeywordsCondition(_Strict):
    """Matches when the message contains any of these words (case-insensitive)."""

    type: Literal["keywords"]
    any: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1,
                                                                           max_length=100)
    whole_word: bool = True


class RegexCondition(_Strict):
    """Matches the message text (case-insensitive) with RE2 syntax, in linear time."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH,
                         description="RE2 syntax (no backreferences or look-around), "
                                     "case-insensitive, searched in the first 4000 characters")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compile_pattern(value)
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        return value


class BusinessHoursCondition(_Strict):
    """Matches inside (or outside) the business's opening hours, in its time zone."""

    type: Literal["business_hours"]
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default=[0, 1, 2, 3, 4], description="0 = Monday ... 6 = Sunday")
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    inside: bool = Field(default=True, description="false matches outside business hours")


class NewContactCondition(_Strict):
    """Matches on the first message of a contact never seen before (or not)."""

    type: Literal["new_contact"]
    value: bool = True


class LabelCondition(_Strict):
    """Matches when the conversation has (or lacks) a label."""

    type: Literal["label"]
    label: str = Field(min_length=1, max_length=64)
    present: bool = True


class StatusCondition(_Strict):
    """Matches when the conversation is in one of these statuses."""

    type: Literal["status"]
    statuses: list[Literal["open", "pending", "resolved", "snoozed"]] = Field(min_length=1)


class IntentCondition(_Strict):
    """Matches when the detected intent of the message is one of these."""

    type: Literal["intent"]
    intents: list[Literal["greeting", "thanks", "goodbye", "human_request", "complaint",
                          "order_status", "pricing", "question", "other"]] = Field(min_length=1)


class LanguageCondition(_Strict):
    """Matches when the detected language of the message is one of these."""

    type: Literal["language"]
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = Field(min_length=1)


Condition = Annotated[Union[PlatformCondition, KeywordsCondition, RegexCondition,
                            BusinessHoursCondition, NewContactCondition, LabelCondition,
                            StatusCondition, IntentCondition, LanguageCondition],
                      Field(discriminator="type")]


# ---------------------------------------------------------------------------- actions

_VARS = ("template variables: {{contact.first_name}}, {{contact.name}}, {{business.name}}, "
         "{{message.text}}, {{conversation.platform}}, {{entities.order_number}}, "
         "{{entities.email}}, {{entities.phone}}, and a lookup's row: {{lookup.<column>}}")


class AiReplyAction(_Strict):
    """Answer from the knowledge base with the configured AI provider; when the AI is not
    confident (or the plan's monthly AI replies are used up), hand off to a human instead.
    No parameters. Skipped while the conversation's AI is paused or after a hand-off.
    """

    type: Literal["ai_reply"]
    draft_for_approval: bool = Field(
        default=False,
        description="post the AI's answer to the Slack thread as a draft instead of sending it; "
                    "a person approves (or edits) it there and it is sent then. Without an "
                    "enabled Slack integration the conversation is handed off instead")
    use_lookup: bool = Field(
        default=False,
        description="give the AI the rows read by this workflow's earlier `lookup` actions "
                    "as facts to answer from (e.g. the order's status)")


class SendTextAction(_Strict):
    """Send a fixed text to the customer (skipped while the AI is paused or handed off)."""

    type: Literal["send_text"]
    text: str = Field(min_length=1, max_length=2000, description=f"the message; {_VARS}")


class QuickReplyOption(_Strict):
    """One tappable option; its payload comes back as a postback / quick reply."""

    title: str = Field(min_length=1, max_length=20, description="the button's label")
    payload: str = Field(min_length=1, max_length=1000,
                         description="sent back when tapped (match it with a postback trigger)")


class SendQuickRepliesAction(_Strict):
    """Send a text with up to 13 tappable options."""

    type: Literal["send_quick_replies"]
    text: str = Field(min_length=1, max_length=2000, description=f"the message; {_VARS}")
    options: list[QuickReplyOption] = Field(min_length=1, max_length=13,
                                            description="1 to 13 options, in order")


class CreateTaskAction(_Strict):
    """Open a task for a human on this conversation."""

    type: Literal["create_task"]
    title: str = Field(min_length=1, max_length=300, description=f"the task's title; {_VARS}")
    description: str | None = Field(default=None, max_length=5000,
                                    description=f"optional details; {_VARS}")
    priority: Literal["low", "normal", "high"] = Field(default="normal",
                                                        description="the task's priority")


class AssignAction(_Strict):
    """Assign the conversation to a user."""

    type: Literal["assign"]
    assignee_id: str = Field(min_length=1, max_length=36,
                             description="the user to assign to: the workflow's owner (your "
                                         "own user id); any other id is refused with 404 "
                                         "assignee_not_found when the workflow is saved")


class AddLabelAction(_Strict):
    """Add a label to the conversation (nothing happens when it is already there)."""

    type: Literal["add_label"]
    label: str = Field(min_length=1, max_length=64, description="the label to add")


class SetStatusAction(_Strict):
    """Move the conversation to a status."""

    type: Literal["set_status"]
    status: Literal["open", "pending", "resolved", "snoozed"] = Field(
        description="the conversation's new status")


class PauseAiAction(_Strict):
    """Stop automated replies in this conversation (ai_enabled=false). No parameters."""

    type: Literal["pause_ai"]


class HandoffAction(_Strict):
    """Hand the conversation to a human: a task with a summary, the AI paused, and the
    customer told that a person will reply (the business profile's handoff_message).
    """

    type: Literal["handoff"]
    reason: str = Field(default="workflow", max_length=200,
                        description="why, recorded on the task and in the run")


class NotifyAction(_Strict):
    """Tell the team: on the dashboard (Socket.IO `notification`) or through an integration."""

    type: Literal["notify"]
    channel: str = Field(default="dashboard", min_length=1, max_length=32,
                         pattern=r"^[a-z_]+$",
                         description="'dashboard' (Socket.IO) or an integration type: slack, "
                                     "email, ... (it must be configured and enabled)")
    template: str = Field(min_length=1, max_length=2000,
                          validation_alias=AliasChoices("template", "message"),
                          description="the text; variables {{contact.name}}, "
                                      "{{contact.first_name}}, {{business.name}}, "
                                      "{{message.text}}, {{conversation.platform}} "
                                      "(`message` is accepted as an older name)")
    title: str | None = Field(default=None, max_length=200,
                              description="subject / heading; variables allowed")
    target: str | None = Field(default=None, max_length=1000,
                               description="this workflow's destination instead of the "
                                           "integration's default: a Slack channel id, or "
                                           "comma-separated e-mail addresses")


# Template namespaces a lookup's `variable` may not take (they are filled from elsewhere).
RESERVED_VARIABLES = frozenset({"contact", "business", "message", "conversation", "entities"})


class LookupAction(_Strict):
    """Read one row of the business's own data with a named query of a database integration.

    The first row's columns become template variables (`{{lookup.status}}`) for the actions
    after it, and AI context for an `ai_reply` with `use_lookup`. Parameter values are
    templates, typically `{{entities.order_number}}` (also `{{entities.email}}`,
    `{{entities.phone}}`, found in the customer's message) — always bound, never pasted
    into the query. When no row matches, a parameter is empty or the database fails,
    `on_missing` decides: hand off to a person (default), continue, or fail the action.
    """

    type: Literal["lookup"]
    integration: Literal["mysql", "postgresql", "mongodb", "sqlserver"] = Field(
        description="the database integration (it must be configured and enabled)")
    query: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$",
                       description="the name of a query in the integration's `queries`")
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
                 Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, max_length=20,
        description="a template per parameter, e.g. {\"order_number\": "
                    "\"{{entities.order_number}}\"}")
    variable: str = Field(default="lookup", pattern=r"^[a-z_]{1,32}$",
                          description="the template namespace of the row: {{lookup.<column>}}")
    on_missing: Literal["handoff", "continue", "fail"] = Field(
        default="handoff",
        description="no row / an empty parameter / the database failed: hand off to a person "
                    "(the actions after it that message the customer are then skipped), "
                    "continue with empty variables, or fail the action")

    @field_validator("variable")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_VARIABLES:
            raise ValueError(f"{value!r} is a built-in template namespace")
        return value
_INTEGRATION = Field(
    default=None, max_length=32, pattern=r"^[a-z_]+$",
    description="one integration type; default: every enabled integration offering the action")
_PARAM_VALUE = Union[Annotated[str, Field(max_length=500)], int, float, bool]


class CrmSyncAction(_Strict):
    """Sync the customer to the CRM (HubSpot, Salesforce): upsert the contact (or lead) by
    e-mail, phone or a stored id, never a duplicate, and log the conversation on it. Runs
    after the customer's reply; a retried run of the same message syncs nothing twice.
    """

    type: Literal["crm_sync"]
    integration: str | None = _INTEGRATION
    log_conversation: bool = Field(default=True,
                                   description="log the transcript as a note / activity")


class CreateTicketAction(_Strict):
    """Open a help-desk ticket (Zendesk) with the requester, subject, transcript and tags,
    once per action run; its id is kept on the conversation's hand-off task.
    """

    type: Literal["create_ticket"]
    integration: str | None = _INTEGRATION
    subject: str = Field(default="Conversation with {{contact.name}}", min_length=1,
                         max_length=300, description=f"the ticket's subject; {_VARS}")
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_:-]{1,64}$")]] = Field(
        default_factory=list, max_length=20, description="tags put on the ticket")
    priority: Literal["low", "normal", "high", "urgent"] | None = Field(
        default=None, description="the ticket's priority; default: the help desk's own")


class TrackEventAction(_Strict):
    """Send an analytics event (Google Analytics 4) with the platform and a pseudonymous
    client id, never the customer's name, phone or text; once per action run.
    """

    type: Literal["track_event"]
    integration: str | None = _INTEGRATION
    event: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$",
                       description="the event's name (GA4 rules: letters, digits, _)")
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")],
                 _PARAM_VALUE] = Field(default_factory=dict, max_length=25,
                                       description="extra event parameters (no personal data)")


Action = Annotated[Union[AiReplyAction, SendTextAction, SendQuickRepliesAction, CreateTaskAction,
                         AssignAction, AddLabelAction, SetStatusAction, PauseAiAction,
                         HandoffAction, NotifyAction, LookupAction, CrmSyncAction,
                         CreateTicketAction, TrackEventAction],
                   Field(discriminator="type")]


class WorkflowDefinition(_Strict):
    """When `trigger` fires and every condition matches, run `actions` in order."""

    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list, max_length=20)
    actions: list[Action] = Field(min_length=1, max_length=20)
    stop_on_error: bool = Field(default=False,
                                description="stop the remaining actions on a failure")
    stop_processing: bool = Field(default=True,
                                  description="when this workflow ran, skip lower-priority ones")
