"""Flask CLI commands (`flask --app app create-admin ...`)."""
from __future__ import annotations

import click
from flask import Flask

from utils.errors import ApiError


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
