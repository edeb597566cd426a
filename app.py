"""The application factory: settings, extensions, blueprints, error handlers, CLI."""
from __future__ import annotations

import time
from pathlib import Path

import redis
from flask import Flask
from flask_cors import CORS
from flask_migrate import Migrate, upgrade
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, NoSuchModuleError
from sqlalchemy.pool import Pool
from werkzeug.middleware.proxy_fix import ProxyFix

import socket_server  # noqa: F401  importing it registers the Socket.IO handlers
from automation.core.policy import AutomationPolicy, install_policy
from cli import register_cli
from models_db import db, include_object, render_item
from routes.admin_api import bp as admin_api_bp
from routes.analytics import bp as analytics_bp
from routes.auth import bp as auth_bp
from routes.business import bp as business_bp
from routes.conversations import bp as conversations_bp
from routes.docs import bp as docs_bp
from routes.health import bp as health_bp
from routes.integrations import bp as integrations_bp
from routes.knowledge import bp as knowledge_bp
from routes.pages import init_pages
from routes.platforms import bp as platforms_bp
from routes.slack import bp as slack_bp
from routes.slack_api import bp as slack_api_bp
from routes.stripe_webhooks import bp as stripe_webhooks_bp
from routes.subscriptions import bp as subscriptions_bp
from routes.tasks import bp as tasks_bp
from routes.users import bp as users_bp
from routes.webhooks import bp as webhooks_bp
from routes.webhooks import install_lean_path
from routes.workflows import bp as workflows_bp
from routes.zendesk_webhooks import bp as zendesk_webhooks_bp
from services import entitlements, integration_actions, integrations, slack
from utils.config import SETTINGS_KEY, ConfigError, Settings, load_settings
from utils.db import SQLITE_WRITER_WAIT, sqlite_file, sqlite_writer_lock
from utils.errors import register_error_handlers
from utils.http import add_security_headers, install_request_guards
from utils.logging import configure_logging
from utils.ratelimit import limiter
from utils.realtime import init_realtime
from utils.store import init_store

ROOT = Path(__file__).resolve().parent
MIGRATIONS_DIR = str(ROOT / "migrations")
migrate = Migrate()


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _database_uri(url: str) -> str:
    """Make a relative SQLite path relative to the working directory and create its folder.

    (Flask-SQLAlchemy would otherwise resolve it against the instance folder.)
    """
    parsed = make_url(url)
    if sqlite_file(parsed):
        path = Path(sqlite_file(parsed))
        if not path.is_absolute():
            path = Path.cwd() / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return parsed.set(database=str(path)).render_as_string(hide_password=False)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, allow concurrent readers, wait on locks.

    synchronous=NORMAL is SQLite's recommended setting with WAL: commits survive a crash of
    the process, only the last ones may be lost on a power cut (the laptop setup; production
    runs on PostgreSQL).
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
        # Transactions are begun by _sqlite_begin below, not by the driver.
        dbapi_connection.isolation_level = None


_SQLITE_PENDING_BEGIN = "dana_sqlite_pending_begin"
_SQLITE_READS = ("select", "pragma", "explain")


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLite: a transaction begins IMMEDIATE, at its first statement that writes.

    In WAL mode a transaction that has read and then writes after another connection
    committed fails at once, whatever the busy timeout (SQLITE_BUSY_SNAPSHOT): with several
    processes (web, workers, lease renewals) that is a lost write. So the reads before a
    transaction's first write run outside it, each seeing the latest committed data (what
    READ COMMITTED, PostgreSQL's default, gives), and the first write begins IMMEDIATE: it
    takes the write lock first, waiting up to the busy timeout, and cannot fail that way. A
    session that only reads takes no lock, so a read before a slow call (the AI, the Send
    API) never blocks the other processes' writes. PostgreSQL is untouched.
    """
    if conn.dialect.name == "sqlite":
        conn.info[_SQLITE_PENDING_BEGIN] = True


_SQLITE_WRITER = "dana_sqlite_writer"


def _release_writer(info) -> None:
    lock = info.pop(_SQLITE_WRITER, None)
    if lock is not None:
        lock.release()


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_lazy_begin(conn, cursor, statement, parameters, context, executemany):
    """Emit the BEGIN IMMEDIATE that _sqlite_begin postponed, before the first write."""
    if conn.info.get(_SQLITE_PENDING_BEGIN):
        words = statement.split(None, 1)
        if not words or words[0].lower() in _SQLITE_READS:
            return  # a read: runs on its own, the transaction has not begun yet
        del conn.info[_SQLITE_PENDING_BEGIN]
        lock = sqlite_writer_lock(conn.engine.url.database)
        if lock.acquire(timeout=SQLITE_WRITER_WAIT):
            conn.info[_SQLITE_WRITER] = lock
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            _release_writer(conn.info)
            raise


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _sqlite_end(conn):
    """A transaction that ran no statement leaves no postponed BEGIN behind; a writer's turn
    ends with its transaction.
    """
    conn.info.pop(_SQLITE_PENDING_BEGIN, None)
    _release_writer(conn.info)


@event.listens_for(Pool, "checkin")
@event.listens_for(Pool, "invalidate")
def _sqlite_writer_gone(dbapi_connection, connection_record, *args):
    """A connection returned or dropped mid-transaction never keeps the writer's turn."""
    if connection_record is not None:
        _release_writer(connection_record.info)


_IDLE_SINCE = "dana_idle_since"
PING_AFTER_IDLE = 1.0  # seconds in the pool after which a connection is pinged on checkout


def _ping_when_idle(engine) -> None:
    """Ping a pooled connection before handing it out, if it sat idle for a while.

    pool_pre_ping pings on every checkout, and a session checks a connection out again
    after each commit: about a dozen extra round trips for one webhook event's run. A
    connection used within the last PING_AFTER_IDLE seconds was alive then; one idle longer
    (the server may have restarted meanwhile) is pinged, and replaced when the ping fails.
    """
    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError("a pooled connection was dropped") from exc
            raise


class DanaFlask(Flask):
    """Flask, deciding once per view or hook function whether it is a coroutine (Flask asks
    `inspect.iscoroutinefunction` for every hook of every request; the answer never changes).
    """

    def ensure_sync(self, func):
        """Flask's ensure_sync, memoised per function."""
        cache = self.__dict__.setdefault("_dana_sync_cache", {})
        try:
            return cache[func]
        except KeyError:
            cache[func] = wrapped = super().ensure_sync(func)
            return wrapped
        except TypeError:  # an unhashable callable: no memo
            return super().ensure_sync(func)


def _connect_redis(app: Flask, settings: Settings) -> None:
    """With REDIS_URL, check Redis once at start; a clear error names the setting."""
    if not settings.REDIS_URL:
        return
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3,
                                  health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"REDIS_URL is set but Redis is unreachable at {settings.REDIS_URL}: "
                          f"{exc}") from None
    app.extensions["dana_redis"] = client


def create_app(settings: Settings | None = None) -> Flask:
    """Build a Dana app from settings (default: the environment and .env)."""
    settings = settings or load_settings()
    instance = Path(settings.INSTANCE_PATH)
    if not instance.is_absolute():
        instance = Path.cwd() / instance
    app = DanaFlask(__name__, instance_path=str(instance))
    app.config[SETTINGS_KEY] = settings  # read back with utils.config.current_settings()
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=_database_uri(settings.DATABASE_URL),
        # hide_parameters: a database error's message (logged with its traceback) must not
        # carry bound values such as password hashes or encrypted tokens.
        # A server connection dropped while pooled (PostgreSQL restarted) is replaced, not
        # handed out: see _ping_when_idle (a SQLite file cannot drop it: no ping).
        SQLALCHEMY_ENGINE_OPTIONS={"hide_parameters": True},
        MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH,
        RATELIMIT_ENABLED=settings.RATE_LIMIT_ENABLED,
        RATELIMIT_STORAGE_URI=settings.REDIS_URL or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    app.json.sort_keys = False
    if settings.TRUSTED_PROXY_HOPS:
        hops = settings.TRUSTED_PROXY_HOPS
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if settings.DANA_ENV == "test":
        app.config["TESTING"] = True

    configure_logging(app)
    _connect_redis(app, settings)
    try:
        db.init_app(app)  # creates the engine: the driver is imported here
    except (ImportError, NoSuchModuleError) as exc:
        backend = make_url(settings.DATABASE_URL).drivername
        raise ConfigError(f"DATABASE_URL uses '{backend}', but no driver for it is installed "
                          f"({exc}); Dana supports sqlite:// and postgresql://") from None
    if not _is_sqlite(settings.DATABASE_URL):
        with app.app_context():
            _ping_when_idle(db.engine)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True,
                     render_item=render_item, include_object=include_object)
    limiter.init_app(app)
    if settings.CORS_ORIGINS:
        CORS(app, resources={r"/api/*": {"origins": settings.CORS_ORIGINS}},
             supports_credentials=True, expose_headers=["X-Request-ID"])
    app.after_request(add_security_headers)
    register_error_handlers(app)
    install_request_guards(app)

    for bp in (health_bp, docs_bp, auth_bp, users_bp, conversations_bp, tasks_bp, admin_api_bp,
               subscriptions_bp, platforms_bp, stripe_webhooks_bp, webhooks_bp, workflows_bp,
               business_bp, knowledge_bp, integrations_bp, slack_bp, slack_api_bp, analytics_bp,
               zendesk_webhooks_bp):
        app.register_blueprint(bp)
    init_pages(app)
    init_store(app)
    install_policy(app, AutomationPolicy(
        consume_ai_reply=entitlements.consume_ai_reply,
        release_ai_reply=entitlements.release_ai_reply, notify_team=integrations.submit,
        require_integration=integrations.require_enabled,
        deferred_notifications=integrations.deferred_notifications,
        run_lookup=integrations.run_lookup,
        submit_action=integration_actions.submit_action,
        channels={slack.CHANNEL: slack.STORED_CHANNEL}))
    init_realtime(app)
    install_lean_path(app)  # outermost: in front of the Socket.IO and proxy middleware
    register_cli(app)
    return app


def upgrade_database(app: Flask) -> None:
    """Bring the schema up to date (Alembic, from the very first table)."""
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)

