"""Entry points: `python main.py` (migrate, then serve API + Socket.IO) and `main:app`
(gunicorn).
"""
from __future__ import annotations

import sys

from app import create_app, upgrade_database
from utils.config import ConfigError, current_settings
from utils.realtime import socketio


def _build():
    """The app from the environment; a configuration error exits 2 with a readable line."""
    try:
        return create_app()
    except ConfigError as exc:
        print(f"dana: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = _build()


def serve() -> None:
    """Upgrade the schema, then serve on HOST:PORT with Socket.IO (threading mode)."""
    settings = current_settings(app)
    upgrade_database(app)
    print(f"dana: serving on http://{settings.HOST}:{settings.PORT} "
          f"(database {app.config['SQLALCHEMY_DATABASE_URI'].split('://')[0]}, "
          f"AI provider {settings.AI_PROVIDER})", file=sys.stderr)
    socketio.run(app, host=settings.HOST, port=settings.PORT, allow_unsafe_werkzeug=True,
                 use_reloader=False)


if __name__ == "__main__":
    serve()
