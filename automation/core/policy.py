"""What the pipeline asks of the layer above it, installed by the factory.

automation/ sits below services/ (imports point downward), yet an automated AI reply must
respect the owner's plan (services/entitlements.py decides) and the team hears of hand-offs,
replies and `notify` actions through the owner's integrations, and the CRM, help-desk and
analytics actions run on them (services/integrations.py
knows which are configured, allowed by the plan and enabled). The factory installs the
implementations per app (`install_policy(app, ...)` in create_app), so the dependency is
inverted rather than hidden in a function-level import. A pipeline run in an app without a
policy fails loudly instead of ignoring the plan.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from flask import Flask, current_app

_EXTENSION = "dana_automation_policy"


@dataclass(frozen=True)
class StoredChannel:
    """How a run handles the stored events of a channel whose work is a business rule (Slack's
    events and button clicks: services/slack.py), not a platform's messages.

    Such an event is stored and run like any other (webhook_events is the outbox: claimed,
    leased, retried, swept, `dead` after EVENT_MAX_ATTEMPTS interrupted runs); only what the
    run does with its body is the channel's.
    """

    # Handle the stored body (webhook_events.raw_body); True when it did something, False
    # when there was nothing to do (the event ends `ignored`); raising fails the run (retried).
    run: Callable[[str], bool]
    # Before a re-run of an event whose previous run was interrupted (its process died):
    # settle the sends that run may have left half-done, so none goes out twice; how many.
    settle: Callable[[str], int]


@dataclass(frozen=True)
class AutomationPolicy:
    """What the pipeline asks the business layer; one callable per question."""

    # Count one AI reply against the owner's plan; False means "hand off instead".
    consume_ai_reply: Callable[[str], bool]
    # Give back the one counted when the AI then did not answer (handed off, or failed).
    release_ai_reply: Callable[[str], None]
    # Tell the team through the owner's integrations (only one type, or every enabled one),
    # after the customer has been answered.
    notify_team: Callable[..., None]
    # Raise LookupError unless the owner's integration of this type is configured and enabled.
    require_integration: Callable[[str, str], None]
    # A context manager: notify_team calls inside it are delivered when it ends.
    deferred_notifications: Callable[[], AbstractContextManager]
    # Queue a workflow action on the owner's integrations (crm_sync, create_ticket,
    # track_event; an ActionRequest and an optional type) to run after the customer's answer;
    # returns the types it will run on, LookupError when no enabled integration offers it.
    submit_action: Callable[..., list[str]]
    # Run a named database lookup for the owner: (owner_id, type, query, params) ->
    # {query, columns, rows, row_count, truncated}; raises with the reason on any failure.
    run_lookup: Callable[[str, str, str, dict], dict] | None = None
    # The stored channels that are not platforms, by webhook_events.platform (e.g. "slack").
    channels: Mapping[str, StoredChannel] = field(default_factory=dict)


def install_policy(app: Flask, policy: AutomationPolicy) -> None:
    """Give this app's pipeline its business rules (called once by the factory)."""
    app.extensions[_EXTENSION] = policy


def policy() -> AutomationPolicy:
    """The current app's policy; RuntimeError if the factory did not install one."""
    try:
        return current_app.extensions[_EXTENSION]
    except KeyError:
        raise RuntimeError("no automation policy installed: build the app with create_app") \
            from None
