"""Entry points: `python main.py` (migrate, then serve API + Socket.IO) and `main:app`
(gunicorn).

Every start-up failure a deployer can cause (a setting, an unreachable database, a port in
use) ends in one line on stderr naming the setting, and exit status 2: never a traceback.
"""
from __future__ import annotations

import argparse
import errno
import socket
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import get_sockaddr, make_server, select_address_family

from app import create_app, upgrade_database
from services import automation_queue
from utils.config import ConfigError, current_settings
from utils.http import JsonErrorRequestHandler

USAGE = """Serve Dana on HOST:PORT (default 127.0.0.1:5000): upgrade the database schema, then
answer the REST API, the webhooks and Socket.IO. Every setting comes from the environment or
.env (see README.md, "Configuration"); there are no command-line options."""


def _parse_args(argv: list[str]) -> None:
    """`--help` prints the usage and exits 0; any other argument is an error (exit 2)."""
    parser = argparse.ArgumentParser(prog="python main.py", description=USAGE,
                                     epilog="Production: gunicorn -c gunicorn.conf.py main:app")
    parser.parse_args(argv)


def _fail(message: str) -> None:
    """Say what is wrong in one line on stderr and exit with status 2."""
    print(f"dana: {message}", file=sys.stderr)
    raise SystemExit(2)


def _build():
    """The app from the environment; a configuration error is one line and exit 2."""
    try:
        return create_app()
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")


if __name__ == "__main__":
    _parse_args(sys.argv[1:])

app = _build()


def _database_error(exc: Exception) -> str:
    """One sentence for a database that cannot be reached or migrated."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    where = url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (f"DATABASE_URL: cannot use the database at {where}: "
            f"{reason[0] if reason else type(exc).__name__}")


def _bind(host: str, port: int) -> socket.socket:
    """Bind and listen on HOST:PORT first, so a port in use is said before any other work."""
    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            _fail(f"PORT: {host}:{port} is already in use (another server is listening "
                  "there; set PORT to a free port)")
        _fail(f"HOST/PORT: cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


def serve() -> None:
    """Bind HOST:PORT, upgrade the schema, say "serving on", then serve API + Socket.IO."""
    settings = current_settings(app)
    sock = _bind(settings.HOST, settings.PORT)
    try:
        upgrade_database(app)
    except SQLAlchemyError as exc:
        _fail(_database_error(exc))
    if settings.AUTOMATION_QUEUE == "inline":
        automation_queue.start(app)  # runs what a previous process left unfinished
    # The same threaded Werkzeug server socketio.run() starts in threading mode, on our socket.
    server = make_server(settings.HOST, settings.PORT, app, threaded=True,
                         request_handler=JsonErrorRequestHandler, fd=sock.fileno())
    sock.close()  # the server holds its own duplicate of the descriptor
    print(f"dana: serving on http://{settings.HOST}:{settings.PORT} "
          f"(database {app.config['SQLALCHEMY_DATABASE_URI'].split('://')[0]}, "
          f"AI provider {settings.AI_PROVIDER})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    serve()
