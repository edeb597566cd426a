"""Flask CLI commands (`flask --app main create-admin ...`, `flask events ...`, `flask worker`,
`flask knowledge import ...`, the plans' commands): an entry point like routes/, calling the
services.
"""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from pydantic import ValidationError

from automation.knowledge.importers import FORMATS_BY_SUFFIX, parse_file
from models_db import User, WebhookEvent, db
from routes.schemas import RegisterIn, TierUpdateIn
from services import integrations as integrations_service
from services import knowledge, plans
from services.rq_queue import run_worker
from services.subscriptions import check_price_free, list_tiers
from services.users import register_user
from services.webhook_events import replay_event
from utils.audit import audit
from utils.auth import revoke_user_sessions
from utils.errors import ApiError
from utils.store import get_store


def register_cli(app: Flask) -> None:
    """Attach Dana's commands to the app's CLI group."""

    @app.cli.command("create-admin")
    @click.option("--email", required=True)
    @click.option("--password", default=None,
                  help="The new account's password (asked for when needed and not given).")
    @click.option("--name", default="Administrator")
    @click.option("--reset-password", is_flag=True,
                  help="For an existing account: also set its password to --password.")
    def create_admin(email: str, password: str | None, name: str, reset_password: bool):
        """Create an administrator account, or promote an existing one.

        An existing account keeps its password unless --reset-password is given (a typo in
        the e-mail must not silently take over somebody's login).
        """
        existing = db.session.scalar(
            db.select(User).where(User.email == User.normalize_email(email)))
        needs_password = existing is None or reset_password
        if needs_password and password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            RegisterIn(email=email, password=password if needs_password else "x" * 8, name=name)
        except ValidationError as exc:
            raise click.BadParameter("; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        if existing is not None:
            was_admin = existing.role == "admin"
            existing.role = "admin"
            if reset_password:
                existing.set_password(password)
            if reset_password:  # a new password signs every existing session out
                revoke_user_sessions(existing.id, "password_reset_cli")
            audit("admin_promoted_cli", user_id=existing.id, password_reset=reset_password)
            state = "was already an admin" if was_admin else "promoted to admin"
            click.echo(f"{existing.email} {state}; " + (
                "password reset, existing sessions signed out." if reset_password else
                "password unchanged (use --reset-password to set a new one)."))
            if password is not None and not reset_password:
                click.echo("Note: --password was ignored for this existing account.", err=True)
            return
        try:
            user = register_user(email, password, name, role="admin")
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
        audit("admin_created_cli", user_id=user.id)
        click.echo(f"Created admin {user.email} ({user.id}).")

    register_operations_cli(app)
    register_plans_cli(app)
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

        An event still 'processing' whose lease ran out is taken to be interrupted (its
        process died): replies that run left unfinished are marked failed with
        `unknown_outcome`, never re-sent (see docs/realtime.md). One that a live run holds
        is left to it. (Running processes also sweep such events on their own.)
        """
        if event_id is not None:
            ids = [event_id]
        else:
            statuses = ["failed", "dead"] + (["received", "processing"] if include_stuck
                                             else [])
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
    @click.option("--status", default=None,
                  help="received|processing|processed|ignored|failed|dead|rejected")
    @click.option("--limit", default=20, show_default=True)
    def list_events(status: str | None, limit: int):
        """Show the newest stored events."""
        stmt = db.select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(WebhookEvent.status == status)
        for e in db.session.scalars(stmt):
            click.echo(f"{e.id}\t{e.platform}\t{e.status}\tattempts={e.attempts}\t"
                       f"{(e.error or '').splitlines()[0] if e.error else ''}")

    app.cli.add_command(events)

    integrations = click.Group("integrations", help="Business-tool integrations.")

    @integrations.command("digest")
    def digest():
        """E-mail every user with an enabled e-mail integration their daily digest.

        Run it once a day (e.g. cron `0 7 * * *`): open hand-offs and yesterday's numbers.
        """
        outcomes = integrations_service.send_digests()
        for owner, outcome in outcomes.items():
            click.echo(f"{owner}: {(outcome or {}).get('status', 'not sent')}")
        click.echo(f"done: {len(outcomes)} digest(s)")
        if any((o or {}).get("status") == "failed" for o in outcomes.values()):
            raise SystemExit(1)

    app.cli.add_command(integrations)

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
    def worker(burst: bool):
        """Run webhook events handed on via Redis (needs REDIS_URL; web: AUTOMATION_QUEUE=rq).

        SIGTERM/SIGINT: finish the current event, then exit. A worker killed outright is
        noticed by the others' sweeps within EVENT_STALE_SECONDS + EVENT_SWEEP_SECONDS and
        its event runs again.
        """
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
    `flask set-stripe-price` (which Stripe Price bills a plan).
    """

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
            plans.grant(user.id, tier["id"], reference, None, event="subscription_granted_cli")
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


def _files(path: Path) -> list[Path]:
    """The importable files at path: the file itself, or a folder's, recursively, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*")
                  if p.is_file() and p.suffix.lower() in FORMATS_BY_SUFFIX
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def register_knowledge_cli(app: Flask) -> None:
    """Attach the `knowledge` command group to the app's CLI."""
    group = click.Group("knowledge", help="The businesses' knowledge bases.")

    @group.command("import")
    @click.argument("path", type=click.Path(exists=True, path_type=Path))
    @click.option("--user", "email", required=True, help="E-mail of the account to import for.")
    @click.option("--tag", "tags", multiple=True, help="Tag every imported document (repeatable).")
    def import_command(path: Path, email: str, tags: tuple[str, ...]):
        """Import .md/.markdown/.txt/.csv files (a file, or a folder of them).

        Every file is parsed first: one malformed file imports nothing. The plan's document
        limit applies to the whole import.
        """
        user = db.session.scalar(db.select(User).where(User.email == User.normalize_email(email)))
        if user is None:
            raise click.ClickException(f"No account with the e-mail {email}.")
        files = _files(path)
        if not files:
            raise click.ClickException(f"No .md, .markdown, .txt or .csv files in {path}.")
        items: list[dict] = []
        errors: list[str] = []
        for file in files:
            try:
                items.extend(dict(item, tags=list(tags)) for item in
                             parse_file(file.name, file.read_bytes()))
            except ApiError as exc:
                errors.append(exc.message)
        if errors:
            raise click.ClickException("nothing imported:\n  " + "\n  ".join(errors))
        try:
            with click.progressbar(length=len(items), label="Indexing documents",
                                   show_pos=True) as bar:
                created = knowledge.add_documents(user.id, items, progress=bar.update)
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
        chunks = sum(doc["chunk_count"] for doc in created)
        click.echo(f"Imported {len(created)} document(s) with {chunks} passage(s) from "
                   f"{len(files)} file(s) for {user.email}.")

    app.cli.add_command(group)
