"""Test fixtures: every test gets an app built by create_app on its own fresh database.

The database is SQLite by default, or PostgreSQL when TEST_DATABASE_URL points at one
(`make test` runs the suite both ways). The schema comes from the Alembic migrations,
built once per session into a template (a file for SQLite, a template database for
PostgreSQL) and copied per test, so each test is isolated and starts from the real schema.
"""
from __future__ import annotations

import itertools
import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask.testing import FlaskClient  # noqa: E402

from app import create_app, upgrade_database  # noqa: E402
from services import automation_queue  # noqa: E402
from utils.config import load_settings  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/0"

_counter = itertools.count()


def need_service(name: str, reason: str):
    """Skip locally, but fail under CI=true: CI must never silently lose a test."""
    if IN_CI:
        pytest.fail(f"{name} is required under CI=true but is unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def _pg_admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def pg_reachable(url: str) -> str | None:
    """None if PostgreSQL answers at url, else the reason."""
    try:
        eng = create_engine(_pg_admin_url(url))
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


def base_settings(tmp_path: Path, database_url: str, **overrides):
    """Settings for a test app: fixed secrets, no .env, generous rate limits."""
    values = dict(
        DANA_ENV="test",
        DATABASE_URL=database_url,
        INSTANCE_PATH=str(tmp_path / "instance"),
        SECRET_KEY="test-secret-key-" + "x" * 32,
        JWT_SECRET_KEY="test-jwt-secret-" + "y" * 32,
        ENCRYPTION_KEYS="aGVsbG8taGVsbG8taGVsbG8taGVsbG8taGVsbG8tMTI=",
        RATE_LIMIT_AUTH="1000 per minute",
        META_APP_SECRET="test-app-secret",
        META_VERIFY_TOKEN="test-verify-token",
        LOG_LEVEL="WARNING",
    )
    values.update(overrides)
    return load_settings(_env_file=None, **values)


class _SqliteDatabases:
    def __init__(self, tmp_root: Path):
        self.template = tmp_root / "template.db"
        app = create_app(base_settings(tmp_root, f"sqlite:///{self.template}"))
        upgrade_database(app)
        with app.app_context():
            from models_db import db
            db.engine.dispose()

    def new(self, tmp_path: Path) -> str:
        path = tmp_path / "test.db"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        pass


class _PostgresDatabases:
    def __init__(self, tmp_root: Path, url: str):
        self.base = make_url(_pg_admin_url(url))
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.template = f"dana_tpl_{_worker()}_{os.getpid()}"
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        app = create_app(base_settings(tmp_root, self.url_for(self.template)))
        upgrade_database(app)
        with app.app_context():
            from models_db import db
            db.engine.dispose()

    def url_for(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def new(self, tmp_path: Path) -> str:
        name = f"dana_t_{_worker()}_{os.getpid()}_{next(_counter)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    """The per-session template database and a factory of per-test copies."""
    root = tmp_path_factory.mktemp("db")
    if TEST_DATABASE_URL.startswith("postgresql"):
        reason = pg_reachable(TEST_DATABASE_URL)
        if reason:
            pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {reason}")
        dbs = _PostgresDatabases(root, TEST_DATABASE_URL)
        yield dbs
        dbs.close()
    else:
        yield _SqliteDatabases(root)


class DrainingClient(FlaskClient):
    """The test client, plus: a request returns once the inline dispatcher has run the
    events it stored (as a delivery's effects were awaited before the dispatcher thread).
    The response is read whole and closed, as a server does once it has sent it (what runs
    after the answer, a webhook's hand-off, runs then).
    """

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        response = super().open(*args, **kwargs)
        automation_queue.drain(self.application)
        return response


@pytest.fixture
def settings_overrides(request):
    """Settings to change for one test: override this fixture in a test module, or
    parametrize it indirectly: `@pytest.mark.parametrize("settings_overrides", [{...}],
    indirect=True)` (the parameter is the dict of overrides)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def app(databases, tmp_path, settings_overrides):
    """A fresh app on a fresh database, built through the factory."""
    url = databases.new(tmp_path)
    application = create_app(base_settings(tmp_path, url, **settings_overrides))
    application.test_client_class = DrainingClient
    ctx = application.app_context()
    ctx.push()
    yield application
    automation_queue.stop(application)
    from models_db import db
    db.session.remove()
    db.engine.dispose()
    ctx.pop()
    databases.drop(url)


@pytest.fixture
def client(app):
    return app.test_client()


def register(client, email=None, password="correct horse battery", name="Test User", **extra):
    """Register through the API and return the token-pair response body."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    resp = client.post("/api/auth/register",
                       json={"email": email, "password": password, "name": name, **extra})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    body["password"] = password
    return body


def auth_header(tokens_or_token) -> dict:
    token = (tokens_or_token["access_token"] if isinstance(tokens_or_token, dict)
             else tokens_or_token)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def user(client):
    """A registered user: the /register response plus 'password' and 'headers'."""
    body = register(client)
    body["headers"] = auth_header(body)
    return body


@pytest.fixture
def other_user(client):
    body = register(client)
    body["headers"] = auth_header(body)
    return body


@pytest.fixture
def admin(app, client):
    """A registered user promoted to admin (through the service, as the CLI does)."""
    body = register(client)
    from models_db import User, db

    u = db.session.get(User, body["user"]["id"])
    u.role = "admin"
    db.session.commit()
    body["user"]["role"] = "admin"
    body["headers"] = auth_header(body)
    return body


@pytest.fixture(scope="session")
def pg_url():
    """URL of this machine's PostgreSQL (for tests that need it whatever the main DB is)."""
    url = TEST_DATABASE_URL if TEST_DATABASE_URL.startswith("postgresql") else PG_DEFAULT_URL
    reason = pg_reachable(url)
    if reason:
        need_service("PostgreSQL", reason)
    return url


@pytest.fixture(scope="session")
def redis_url():
    """URL of this machine's Redis (for tests of the message queue and RQ)."""
    url = os.environ.get("TEST_REDIS_URL", REDIS_DEFAULT_URL)
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        need_service("Redis", str(exc))
    return url
