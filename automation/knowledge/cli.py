"""`flask knowledge import PATH --user EMAIL`: bulk-load a business's knowledge from files."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from automation.knowledge.importers import FORMATS_BY_SUFFIX, parse_file
from utils.errors import ApiError


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
        from automation.knowledge.database import create_documents
        from models_db import User, db

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
                created = create_documents(user.id, items, progress=bar.update)
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
        chunks = sum(doc["chunk_count"] for doc in created)
        click.echo(f"Imported {len(created)} document(s) with {chunks} passage(s) from "
                   f"{len(files)} file(s) for {user.email}.")

    app.cli.add_command(group)
