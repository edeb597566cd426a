"""Flask CLI commands (`flask --app app create-admin ...`)."""
from __future__ import annotations

import click
from flask import Flask
from pydantic import ValidationError

from models_db import User, db
from routes.schemas import TierUpdateIn
from services.subscriptions import check_price_free, list_tiers, subscribe
from utils.audit import audit
from utils.errors import ApiError
from utils.store import get_store


def register_cli(app: Flask) -> None:
    """Attach Dana's commands to the app's CLI group."""

    @app.cli.command("create-admin")
    @click.option("--email", required=True)
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--name", default="Administrator")
    def create_admin(email: str, password: str, name: str):
        """Create an administrator account (or promote an existing one)."""
        from models_db import User, db
        from routes.schemas import RegisterIn
        from services.users import register_user
        from utils.audit import audit
        from pydantic import ValidationError

        try:
            RegisterIn(email=email, password=password, name=name)
        except ValidationError as exc:
            raise click.BadParameter("; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        existing = db.session.scalar(db.select(User).where(User.email == User.normalize_email(email)))
        if existing is not None:
            existing.role = "admin"
            existing.set_password(password)
            audit("admin_promoted_cli", user_id=existing.id)
            click.echo(f"Promoted {existing.email} to admin.")
            return
        try:
            user = register_user(email, password, name, role="admin")
        except ApiError as exc:
            raise click.ClickException(exc.message)
        audit("admin_created_cli", user_id=user.id)
        click.echo(f"Created admin {user.email} ({user.id}).")

    register_operations_cli(app)
    register_plans_cli(app)
    from automation.knowledge.cli import register_knowledge_cli
    register_knowledge_cli(app)


def register_operations_cli(app: Flask) -> None:
    """`flask events ...` (replay stored webhook deliveries) and `flask worker` (RQ)."""

    events = click.Group("events", help="Stored webhook deliveries.")

    @events.command("retry")
    @click.option("--id", "event_id", type=int, help="Retry one event (any status).")
    @click.option("--include-stuck", is_flag=True,
                  help="Also re-run events left 'received'/'processing' (e.g. after a crash).")
    def retry(event_id: int | None, include_stuck: bool):
        """Re-run failed events (or one event by id) in this process.

        An event still 'processing' is taken to be interrupted (its process died): replies
        that run left unfinished are marked failed with `unknown_outcome`, never re-sent
        (see docs/realtime.md). A replayed event leaves RQ's failed job registry.
        """
        from models_db import WebhookEvent, db
        from services.webhook_events import replay_event
        from utils.errors import ApiError

        if event_id is not None:
            ids = [event_id]
        else:
            statuses = ["failed"] + (["received", "processing"] if include_stuck else [])
            ids = list(db.session.scalars(db.select(WebhookEvent.id)
                                          .where(WebhookEvent.status.in_(statuses))
                                          .order_by(WebhookEvent.id)))
        if not ids:
            click.echo("Nothing to retry.")
            return
        results: dict[str, int] = {}
        for one in ids:
            try:
                status = replay_event(one)
            except ApiError as exc:
                raise click.ClickException(f"event {one}: {exc.message}") from None
            results[status] = results.get(status, 0) + 1
            click.echo(f"event {one}: {status}")
        click.echo("done: " + ", ".join(f"{v} {k}" for k, v in sorted(results.items())))
        if results.get("failed"):
            raise SystemExit(1)

    @events.command("list")
    @click.option("--status", default=None, help="received|processing|processed|ignored|failed|rejected")
    @click.option("--limit", default=20, show_default=True)
    def list_events(status: str | None, limit: int):
        """Show the newest stored events."""
        from models_db import WebhookEvent, db

        stmt = db.select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(WebhookEvent.status == status)
        for e in db.session.scalars(stmt):
            click.echo(f"{e.id}\t{e.platform}\t{e.status}\tattempts={e.attempts}\t"
                       f"{(e.error or '').splitlines()[0] if e.error else ''}")

    app.cli.add_command(events)

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
    def worker(burst: bool):
        """Run an RQ worker for the automation queue (needs REDIS_URL; web: AUTOMATION_QUEUE=rq).

        SIGTERM/SIGINT: finish the current job, then exit. A worker killed outright is
        detected by the others within 3 x RQ_HEARTBEAT_SECONDS and its job runs again.
        """
        from flask import current_app

        from services.rq_queue import run_worker

        if "dana_redis" not in current_app.extensions:
            raise click.ClickException("REDIS_URL is not set: there is no queue to work on.")
        run_worker(current_app._get_current_object(), burst=burst)


def _tier_by_name(name: str) -> dict:
    """A plan by its name (any case) or id, archived ones included."""
    wanted = name.strip().lower()
    for tier in list_tiers(include_inactive=True)["items"]:
        if tier["id"] == name or tier["name"].lower() == wanted:
            return tier
    raise click.ClickException(f"No plan named {name!r}.")


def register_plans_cli(app: Flask) -> None:
    """`flask grant-plan` (an operator grants a plan without a payment provider) and
    `flask set-stripe-price` (which Stripe Price bills a plan)."""

    @app.cli.command("grant-plan")
    @click.option("--email", required=True, help="E-mail of the account.")
    @click.option("--tier", "tier_name", required=True, help="Plan name (e.g. Professional).")
    @click.option("--reference", default=None, help="A reference kept with the grant.")
    def grant_plan(email: str, tier_name: str, reference: str | None):
        """Grant a plan to an account, with no payment; it runs until changed."""
        user = db.session.scalar(db.select(User).where(User.email == User.normalize_email(email)))
        if user is None:
            raise click.ClickException(f"No account with e-mail {email}.")
        tier = _tier_by_name(tier_name)
        try:
            subscribe(user.id, tier["id"], reference, None, provider="admin",
                      event="subscription_granted_cli")
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"Granted {tier['name']} to {user.email}.")

    @app.cli.command("set-stripe-price")
    @click.option("--tier", "tier_name", required=True, help="Plan name (e.g. Starter).")
    @click.option("--price-id", required=True,
                  help="The Stripe Price id (price_...) that bills the plan; '' to clear.")
    @click.option("--trial-days", type=click.IntRange(0, 365), default=None,
                  help="Also set the plan's free trial, in days (0 = none).")
    def set_stripe_price(tier_name: str, price_id: str, trial_days: int | None):
        """Set which Stripe Price bills a plan (Checkout and webhooks map plans by it)."""
        tier = _tier_by_name(tier_name)
        changes: dict = {"stripe_price_id": price_id.strip() or None}
        if trial_days is not None:
            changes["trial_days"] = trial_days
        try:
            TierUpdateIn(**changes)
        except ValidationError as exc:
            raise click.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
        try:
            check_price_free(changes["stripe_price_id"], tier["id"])
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
        get_store().update_tier(tier["id"], changes)
        audit("tier_updated_cli", tier_id=tier["id"], fields=sorted(changes))
        click.echo(f"{tier['name']}: stripe_price_id={changes['stripe_price_id']}"
                   + (f", trial_days={trial_days}" if trial_days is not None else ""))
