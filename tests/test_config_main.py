"""Settings, `python main.py`, the CLI and the migrations, as a deployer meets them."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from utils.config import GENERATED_SECRETS, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FLASK = str(Path(sys.executable).with_name("flask"))


@pytest.fixture
def clean_env(monkeypatch):
    """No Dana setting comes from the test runner's environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def subprocess_env(**settings) -> dict:
    """The current environment without any Dana setting, plus these settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in Settings.model_fields and not k.startswith("FLASK_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["FLASK_SKIP_DOTENV"] = "1"
    env.update({k: str(v) for k, v in settings.items()})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MainServer:
    """`python main.py` on a free port, started when its own "serving on" line is printed.

    That line comes after the bind, so whatever answers on the port then is this process, not
    another test's server that took the port between free_port() and the bind; when one did,
    the start is tried again on another port. Its output is read on a thread (`lines`), so a
    chatty server never blocks on a full pipe.
    """

    def __init__(self, cwd: Path, **settings):
        for _ in range(3):
            self.port = free_port()
            env = subprocess_env(HOST="127.0.0.1", PORT=self.port, **settings)
            self.proc = subprocess.Popen([PYTHON, str(ROOT / "main.py")], cwd=cwd, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
            self.lines: list[str] = []
            self.serving = threading.Event()
            threading.Thread(target=self._read, daemon=True).start()
            deadline = time.monotonic() + 60
            while not self.serving.wait(0.05) and self.proc.poll() is None:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("python main.py did not start serving in 60 s:\n"
                                + self.output)
            if self.serving.is_set():
                return
            self.proc.wait(timeout=15)
            if "in use" not in self.output:
                break
        pytest.fail("python main.py did not start serving:\n" + self.output)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if "serving on" in line:
                self.serving.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


# --- load_settings ----------------------------------------------------------------------


def test_production_without_secrets_names_them(clean_env, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, DANA_ENV="production", INSTANCE_PATH=str(tmp_path / "i"))
    message = str(info.value)
    for name in GENERATED_SECRETS:
        assert name in message
    assert not (tmp_path / "i" / "secrets.json").exists()  # nothing generated in production


def test_production_names_only_the_missing_secret(clean_env, tmp_path):
    clean_env.setenv("SECRET_KEY", "s" * 40)
    clean_env.setenv("ENCRYPTION_KEYS", Fernet.generate_key().decode())
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, DANA_ENV="production", INSTANCE_PATH=str(tmp_path))
    assert "JWT_SECRET_KEY" in str(info.value)
    assert "ENCRYPTION_KEYS" not in str(info.value)
    assert "SECRET_KEY," not in str(info.value)


def test_production_with_secrets_loads(clean_env, tmp_path):
    key = Fernet.generate_key().decode()
    clean_env.setenv("SECRET_KEY", "s" * 40)
    clean_env.setenv("JWT_SECRET_KEY", "j" * 40)
    clean_env.setenv("ENCRYPTION_KEYS", key)
    s = load_settings(_env_file=None, DANA_ENV="production", INSTANCE_PATH=str(tmp_path))
    assert (s.SECRET_KEY, s.JWT_SECRET_KEY, s.encryption_keys) == ("s" * 40, "j" * 40, [key])


def test_development_generates_secrets_once_with_mode_0600(clean_env, tmp_path):
    instance = tmp_path / "instance"
    first = load_settings(_env_file=None, DANA_ENV="development", INSTANCE_PATH=str(instance))
    path = instance / "secrets.json"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert set(stored) == set(GENERATED_SECRETS)
    for name in GENERATED_SECRETS:
        assert getattr(first, name) == stored[name]
    assert len(first.SECRET_KEY.encode()) >= 32 and len(first.JWT_SECRET_KEY.encode()) >= 32
    assert first.SECRET_KEY != first.JWT_SECRET_KEY
    Fernet(first.encryption_keys[0])  # a usable key

    second = load_settings(_env_file=None, DANA_ENV="development", INSTANCE_PATH=str(instance))
    for name in GENERATED_SECRETS:
        assert getattr(second, name) == getattr(first, name)
    assert json.loads(path.read_text()) == stored


def test_development_keeps_a_configured_secret(clean_env, tmp_path):
    clean_env.setenv("JWT_SECRET_KEY", "configured-jwt-secret-" + "k" * 20)
    s = load_settings(_env_file=None, INSTANCE_PATH=str(tmp_path))
    assert s.JWT_SECRET_KEY == "configured-jwt-secret-" + "k" * 20
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert set(stored) == {"SECRET_KEY", "ENCRYPTION_KEYS"}


def test_dotenv_is_read(clean_env, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=5123\nCORS_ORIGINS=https://a.example.com\n")
    s = load_settings(_env_file=str(env_file), INSTANCE_PATH=str(tmp_path))
    assert s.PORT == 5123
    assert s.CORS_ORIGINS == ["https://a.example.com"]


@pytest.mark.parametrize("value, expected", [
    ("https://app.example.com", ["https://app.example.com"]),
    ("https://a.example.com, https://b.example.com", ["https://a.example.com",
                                                      "https://b.example.com"]),
    ('["https://a.example.com"]', ["https://a.example.com"]),
    ("", []),
])
def test_cors_origins_from_the_environment(clean_env, tmp_path, value, expected):
    clean_env.setenv("CORS_ORIGINS", value)
    assert load_settings(_env_file=None, INSTANCE_PATH=str(tmp_path)).CORS_ORIGINS == expected


@pytest.mark.parametrize("value", ["*", "https://a.example.com,*", '["*"]'])
def test_cors_wildcard_is_refused(clean_env, tmp_path, value):
    clean_env.setenv("CORS_ORIGINS", value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, INSTANCE_PATH=str(tmp_path))
    assert "CORS_ORIGINS" in str(info.value)


def test_cors_wildcard_is_refused_as_an_override(clean_env, tmp_path):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_settings(_env_file=None, INSTANCE_PATH=str(tmp_path), CORS_ORIGINS=["*"])


@pytest.mark.parametrize("name, value", [
    ("JWT_SECRET_KEY", "too-short"),
    ("SECRET_KEY", "too-short"),
    ("ENCRYPTION_KEYS", "not-a-fernet-key"),
    ("PORT", "eighty"),
    ("DATA_BACKEND", "mongo"),
    ("RATE_LIMIT_WEBHOOK_FORGED", "sixty a minute"),
    ("RATE_LIMIT_AUTH", ""),
])
def test_invalid_setting_is_named(clean_env, tmp_path, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, INSTANCE_PATH=str(tmp_path))
    assert name in str(info.value)


def test_rq_queue_needs_redis(clean_env, tmp_path):
    clean_env.setenv("AUTOMATION_QUEUE", "rq")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings(_env_file=None, INSTANCE_PATH=str(tmp_path))


# --- python main.py ---------------------------------------------------------------------


def test_python_main_serves_on_an_empty_sqlite_database(tmp_path):
    db_file = tmp_path / "data" / "dana.db"
    db_file.parent.mkdir()
    db_file.touch()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    server = MainServer(workdir, DATABASE_URL=f"sqlite:///{db_file}")
    base = server.base_url
    try:
        resp = httpx.get(f"{base}/health", timeout=10)
        assert resp.status_code == 200, server.output
        assert resp.json()["status"] == "ok"
        assert resp.headers["X-Request-ID"]

        # The schema was migrated into the empty file: registering works.
        reg = httpx.post(f"{base}/api/auth/register", timeout=10,
                         json={"email": "first@example.com", "password": "long enough pw"})
        assert reg.status_code == 201, reg.text
        me = httpx.get(f"{base}/api/auth/me", timeout=10,
                       headers={"Authorization": f"Bearer {reg.json()['access_token']}"})
        assert me.status_code == 200 and me.json()["email"] == "first@example.com"
        with sqlite3.connect(db_file) as conn:
            assert conn.execute("SELECT email FROM users").fetchall() == [("first@example.com",)]
        # Secrets were generated into the working directory's instance folder, mode 0600.
        secrets_file = workdir / "instance" / "secrets.json"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    finally:
        server.stop()


def test_python_main_in_production_without_secrets_fails_clearly(tmp_path):
    env = subprocess_env(DANA_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
                         PORT=free_port())
    proc = subprocess.run([PYTHON, str(ROOT / "main.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    for name in GENERATED_SECRETS:
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "instance" / "secrets.json").exists()


def test_python_main_with_an_invalid_setting_fails_clearly(tmp_path):
    env = subprocess_env(CORS_ORIGINS="*", PORT=free_port())
    proc = subprocess.run([PYTHON, str(ROOT / "main.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "CORS_ORIGINS" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- the CLI ----------------------------------------------------------------------------


def test_flask_create_admin_makes_an_admin(app, tmp_path):
    s = app.config["DANA_SETTINGS"]
    env = subprocess_env(DANA_ENV="test", DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
                         INSTANCE_PATH=str(tmp_path / "cli-instance"), SECRET_KEY=s.SECRET_KEY,
                         JWT_SECRET_KEY=s.JWT_SECRET_KEY, ENCRYPTION_KEYS=s.ENCRYPTION_KEYS,
                         PYTHONPATH=str(ROOT))
    proc = subprocess.run([FLASK, "--app", "app:create_app", "create-admin",
                           "--email", "Boss@Example.com", "--password", "admin password 1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "boss@example.com" in proc.stdout

    client = app.test_client()
    login = client.post("/api/auth/login",
                        json={"email": "boss@example.com", "password": "admin password 1"})
    assert login.status_code == 200, login.get_json()
    assert login.get_json()["user"]["role"] == "admin"
    resp = client.get("/api/users",
                      headers={"Authorization": f"Bearer {login.get_json()['access_token']}"})
    assert resp.status_code == 200
    assert [u["email"] for u in resp.get_json()["items"]] == ["boss@example.com"]

    from models_db import AuditLog, db

    admin_id = login.get_json()["user"]["id"]
    rows = db.session.scalars(db.select(AuditLog).where(AuditLog.event == "admin_created_cli"))
    assert [r.user_id for r in rows] == [admin_id]


def _login(client, email, password):
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_create_admin_promotes_an_existing_user_keeping_the_password(app, client, user):
    runner = app.test_cli_runner()
    email = user["user"]["email"]
    result = runner.invoke(args=["create-admin", "--email", email.upper(),
                                 "--password", "a new admin password"])
    assert result.exit_code == 0, result.output
    assert "promoted to admin" in result.output and "password unchanged" in result.output
    assert "--reset-password" in result.output
    # The password was NOT reset: the old one still works, the new one does not.
    assert _login(client, email, "a new admin password").status_code == 401
    login = _login(client, email, user["password"])
    assert login.status_code == 200 and login.get_json()["user"]["role"] == "admin"
    assert client.get("/api/users", headers={
        "Authorization": f"Bearer {login.get_json()['access_token']}"}).status_code == 200
    # Without --password it asks for nothing.
    again = runner.invoke(args=["create-admin", "--email", email], input="")
    assert again.exit_code == 0 and "was already an admin" in again.output


def test_create_admin_reset_password_sets_it_and_signs_sessions_out(app, client, user):
    runner = app.test_cli_runner()
    email = user["user"]["email"]
    result = runner.invoke(args=["create-admin", "--email", email, "--reset-password",
                                 "--password", "a new admin password"])
    assert result.exit_code == 0, result.output
    assert "password reset" in result.output
    assert _login(client, email, user["password"]).status_code == 401
    assert _login(client, email, "a new admin password").status_code == 200
    assert client.get("/api/auth/me", headers=user["headers"]).status_code == 401
    weak = runner.invoke(args=["create-admin", "--email", email, "--reset-password",
                               "--password", "short"])
    assert weak.exit_code != 0 and "password" in weak.output


def test_create_admin_refuses_a_weak_password(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "--email", "weak@example.com",
                                 "--password", "short"])
    assert result.exit_code != 0
    assert "password" in result.output
    from models_db import User, db

    assert db.session.scalar(db.select(User).where(User.email == "weak@example.com")) is None


# --- migrations -------------------------------------------------------------------------


def test_migrations_match_the_models(app):
    """`alembic check`: the migrated schema is exactly what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from app import MIGRATIONS_DIR
    from models_db import db, include_object, render_item

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "render_item": render_item,
                                                     "include_object": include_object})
        diff = compare_metadata(ctx, db.metadata)
        current = ctx.get_current_heads()
    assert diff == []
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"
    assert current == tuple(heads)
    # The metadata really is the app's: the foundation tables are in it.
    assert {"users", "auth_sessions", "refresh_tokens", "audit_log"} <= set(db.metadata.tables)


# --- start-up errors are one clear line ----------------------------------------------------


def _start(tmp_path, timeout=60, args=(), **settings):
    """Run `python main.py` to its end; (exit status, stderr)."""
    env = subprocess_env(PORT=settings.pop("PORT", free_port()),
                         DATABASE_URL=settings.pop("DATABASE_URL", f"sqlite:///{tmp_path}/d.db"),
                         **settings)
    proc = subprocess.run([PYTHON, str(ROOT / "main.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr, proc.stdout


def _one_line_naming(stderr: str, setting: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert setting in lines[0] and "Traceback" not in stderr
    assert "serving on" not in stderr


@pytest.mark.parametrize("setting, value", [
    ("DATABASE_URL", "not a database url"),
    ("DATABASE_URL", "mysql://root@127.0.0.1:3306/test"),       # no MySQL driver installed
    ("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/dana"),  # nothing listens on port 1
    ("REDIS_URL", "127.0.0.1:6379"),                             # no scheme
])
def test_python_main_start_up_errors_are_one_line_exit_2(tmp_path, setting, value):
    status, stderr, _ = _start(tmp_path, **{setting: value})
    assert status == 2, stderr
    _one_line_naming(stderr, setting)


def test_python_main_with_a_dotenv_that_is_not_utf8(tmp_path):
    (tmp_path / ".env").write_bytes(b"APP_URL=http://caf\xe9.example.com\n")
    status, stderr, _ = _start(tmp_path)
    assert status == 2, stderr
    _one_line_naming(stderr, ".env")


def test_python_main_says_when_the_port_is_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, stderr, _ = _start(tmp_path, PORT=port, HOST="127.0.0.1")
    assert status == 2, stderr
    _one_line_naming(stderr, "PORT")
    assert "in use" in stderr


def test_python_main_help_prints_usage_and_exits_0(tmp_path):
    status, stderr, stdout = _start(tmp_path, args=["--help"], DATABASE_URL="not a url")
    assert status == 0, stderr
    assert "usage: python main.py" in stdout and "HOST:PORT" in stdout
    assert not (tmp_path / "instance").exists()  # nothing was built or generated
    status, stderr, _ = _start(tmp_path, args=["--port", "1"])
    assert status == 2 and "usage:" in stderr


def test_serving_on_is_printed_once_the_port_accepts_connections(tmp_path):
    server = MainServer(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/d.db")
    port = server.port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # bound before the line was printed: connecting at once succeeds
        # The server's own protocol errors use the JSON error shape too.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(f"GET /api/{'x' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            raw = b""
            while chunk := conn.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split(b" ")[1] == b"414", raw[:300]
        assert b"Content-Type: application/json" in head
        assert json.loads(body)["error"]["code"] == "http_414"
        resp = httpx.get(f"http://127.0.0.1:{port}/api/{'x' * 9_000}", timeout=30)
        assert resp.status_code == 414 and resp.json()["error"]["code"] == "uri_too_long"
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:",
                                 "sqlite:///file::memory:?cache=shared&uri=true"])
def test_an_in_memory_sqlite_url_is_left_as_given_and_makes_no_file(tmp_path, monkeypatch, url):
    """An in-memory database has no file: its URL is not turned into a path under the working
    directory (no stray "file::memory:" file), and its named locks stay in the process."""
    from sqlalchemy.engine import make_url

    from app import _database_uri
    from utils.db import sqlite_file

    monkeypatch.chdir(tmp_path)
    assert _database_uri(url) == url
    assert sqlite_file(make_url(url)) is None
    assert list(tmp_path.iterdir()) == []


def test_a_relative_sqlite_file_is_placed_under_the_working_directory(tmp_path, monkeypatch):
    from sqlalchemy.engine import make_url

    from app import _database_uri

    monkeypatch.chdir(tmp_path)
    resolved = make_url(_database_uri("sqlite:///data/dana.db"))
    assert resolved.database == str(tmp_path / "data" / "dana.db")
    assert (tmp_path / "data").is_dir()
