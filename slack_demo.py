"""Try the Slack integration from a shell: check health, post a test message, print history.

Uses the configured credentials, the same settings the server reads (environment or `.env`):
SLACK_BOT_TOKEN, SLACK_CHANNEL_ID and optionally SLACK_API_URL; or, with `--user EMAIL`, the
Slack integration that user connected through the API (read from DATABASE_URL, decrypted with
ENCRYPTION_KEYS). Nothing is stored.

    python slack_demo.py                        # health + a test message + the latest 10
    python slack_demo.py --no-post -n 20        # read only
    python slack_demo.py --user nora@example.com

Exit status: 0 when everything worked, 1 when Slack refused or was unreachable, 2 when the
settings are missing.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from sqlalchemy import select

from app import create_app
from automation.integrations.base import IntegrationCheckFailed, IntegrationError
from automation.integrations.business.slack import SlackConfig, SlackConnector
from models_db import User, db
from services import slack as slack_service
from utils.config import Settings, load_settings


def _when(ts: str | None) -> str:
    try:
        return datetime.fromtimestamp(float(ts or 0), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return "?"


def main(argv: list[str] | None = None, settings: Settings | None = None, out=None) -> int:
    """Run the demo; returns the exit status."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-post", action="store_true", help="do not post a test message")
    parser.add_argument("-n", "--limit", type=int, default=10, help="history messages to print")
    parser.add_argument("--text", default="Hello from Dana: the Slack integration works.",
                        help="the test message")
    parser.add_argument("--user", metavar="EMAIL",
                        help="use this user's Slack integration instead of SLACK_BOT_TOKEN")
    args = parser.parse_args(argv)
    if args.user:
        app = create_app(settings or load_settings())
        with app.app_context():
            user = db.session.scalar(select(User).where(
                User.email == User.normalize_email(args.user)))
            found = slack_service.caller_slack(user) if user is not None else None
            if found is None:
                print(f"not_configured: {args.user} has no Slack integration", file=out)
                return 2
            return _run(found.connector, args, out)
    settings = settings or Settings()
    if not settings.SLACK_BOT_TOKEN or not settings.SLACK_CHANNEL_ID:
        print("not_configured: set SLACK_BOT_TOKEN and SLACK_CHANNEL_ID "
              "(see docs/SLACK_SETUP_GUIDE.md)", file=out)
        return 2
    try:
        config = SlackConfig(bot_token=settings.SLACK_BOT_TOKEN,
                             channel_id=settings.SLACK_CHANNEL_ID)
    except ValueError as exc:
        print(f"not_configured: {exc.errors()[0]['loc'][0]} is not valid", file=out)
        return 2
    return _run(SlackConnector(config, settings), args, out)


def _run(slack: SlackConnector, args, out) -> int:
    """Health, the test message, the history: what the demo prints, and its exit status."""
    config = slack.config
    try:
        print(f"health: ok ({slack.check()})", file=out)
    except IntegrationCheckFailed as exc:
        print(f"health: error ({exc})", file=out)
        return 1
    try:
        if not args.no_post:
            posted = slack.post(args.text)
            print(f"posted: ts={posted['ts']} channel={posted['channel']}", file=out)
        history = slack.history(limit=max(1, min(args.limit, 100)))
    except IntegrationError as exc:
        print(f"error: {exc}", file=out)
        return 1
    print(f"latest {len(history['items'])} message(s) in {config.channel_id}:", file=out)
    for item in history["items"]:
        replies = f" [{item['reply_count']} replies]" if item["reply_count"] else ""
        print(f"  {_when(item['ts'])}  {item['user'] or '?'}: {item['text']}{replies}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
