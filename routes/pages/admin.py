"""The operator pages under /admin (role admin; anyone else gets 404): users, plans and
subscriptions, webhook events with replay, the audit log and health.
"""
from __future__ import annotations

from typing import get_args

from flask import g, redirect, request, url_for
from wtforms.fields import SelectChoice

from routes.pages.common import done, page_blueprint, render
from routes.pages.forms import AdminUserForm, GrantForm
from routes.schemas.webhook_events import EventChannel
from services import operations, subscriptions, users
from services import plans as plan_policy
from services import webhook_events as events

bp = page_blueprint("admin", "/admin", admin=True)

EVENT_STATUSES = ("received", "processing", "processed", "ignored", "failed", "dead",
                  "rejected")
EVENT_CHANNELS = get_args(EventChannel)  # the API's filter values, one list


@bp.get("")
def index():
    """The operator's start page is the user list."""
    return redirect(url_for("admin.user_list"))


@bp.get("/users")
def user_list():
    """Users, oldest first, searched by e-mail."""
    q = (request.args.get("q") or "").strip()[:320]
    page = users.list_users(q or None, 50, request.args.get("cursor") or None)
    return render("admin/users.html", page=page, q=q)


@bp.post("/users/<user_id>")
def user_update(user_id: str):
    """Change a user's role or deactivate them (their sessions end at once)."""
    form = AdminUserForm()
    changes = {"role": form.role.data} if form.role.data in ("user", "admin") else {}
    if "is_active" in request.form or request.form.get("deactivate"):
        changes["is_active"] = form.is_active.data
    users.admin_update_user(g.user, user_id, changes)
    return done("User updated.", "admin.user_list", q=request.args.get("q", ""))


@bp.get("/plans")
def plans():
    """Plans and every user's subscription; grant a plan to a user."""
    tiers = subscriptions.list_tiers(include_inactive=True)["items"]
    form = GrantForm(user_id=request.args.get("user_id", ""))
    form.tier_id.choices = [SelectChoice(t["id"], t["name"]) for t in tiers]
    subs = subscriptions.admin_list(100, request.args.get("cursor") or None, None)
    return render("admin/plans.html", tiers=tiers, subs=subs, form=form)


@bp.post("/plans/grant")
def grant():
    """Put a user on a plan now (a manual deal), audited."""
    tiers = subscriptions.list_tiers(include_inactive=True)["items"]
    form = GrantForm()
    form.tier_id.choices = [SelectChoice(t["id"], t["name"]) for t in tiers]
    if not form.validate():
        subs = subscriptions.admin_list(100, None, None)
        return render("admin/plans.html", 400, tiers=tiers, subs=subs, form=form)
    plan_policy.request_plan(g.user, form.tier_id.data, form.user_id.data.strip())
    return done("Plan granted.", "admin.plans")


@bp.get("/events")
def event_list():
    """Stored webhook deliveries, newest first, by status and platform (e.g. dead ones)."""
    status = request.args.get("status") or None
    platform = request.args.get("platform") or None
    status = status if status in EVENT_STATUSES else None
    platform = platform if platform in EVENT_CHANNELS else None
    page = events.list_events(status, platform, 50, request.args.get("cursor") or None)
    return render("admin/events.html", page=page, status=status, platform=platform,
                  statuses=EVENT_STATUSES, channels=EVENT_CHANNELS)


@bp.post("/events/<int:event_id>/replay")
def event_replay(event_id: int):
    """Run a stored delivery again now (nothing is stored or sent twice), audited."""
    event = events.admin_replay(g.user.id, event_id)
    return done(f"Event {event_id} replayed: {event['status']}.", "admin.event_list",
                status=request.args.get("status") or None)


@bp.get("/audit")
def audit_log():
    """The newest security and admin events."""
    event = (request.args.get("event") or "").strip()[:64] or None
    return render("admin/audit.html", rows=operations.list_audit(event, None), event=event)


@bp.get("/health")
def health():
    """Database, Redis, workers, webhook backlog and platform accounts."""
    return render("admin/health.html", report=operations.health_report())
