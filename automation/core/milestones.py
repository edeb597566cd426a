"""Milestones of a conversation that integrations hear of without a workflow.

A conversation's start, hand-offs and the business's replies already reach the owner's
integrations as notifications (message_processor, handoff, sending); its resolution is
announced here, from every place that can resolve one (the API and console, a workflow's
`set_status`, Slack's Close button). Analytics turns it into its `resolved` event.
"""
from __future__ import annotations

from automation.core.policy import policy
from automation.integrations.base import Notification


def status_changed(owner_id: str, previous_status: str | None, conversation: dict) -> None:
    """Announce a conversation that has just become resolved (after the current request)."""
    if conversation.get("status") != "resolved" or previous_status == "resolved":
        return
    policy().notify_team(Notification(owner_id=owner_id, kind="resolved", text="",
                                      conversation=conversation),
                         only_type="google_analytics")
