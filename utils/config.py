"""Typed settings for Dana, built once per app in the factory.

Everything is read from the environment (and `.env` when present) by pydantic-settings,
never at import time. Secrets that are not configured are generated once into the
instance folder (mode 0600) so a laptop install needs no set-up; in production
(`DANA_ENV=production`) a missing secret is a start-up error that names it.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from cryptography.fernet import Fernet
from flask import Flask, current_app
from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

GENERATED_SECRETS = ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEYS")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names the setting."""


class Settings(BaseSettings):
    """Every setting of the public contract (DESIGN.md), with its default."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    DANA_ENV: Literal["development", "production", "test"] = "development"
    HOST: str = "127.0.0.1"
    PORT: int = 5000
    INSTANCE_PATH: str = "instance"
    DATABASE_URL: str = "sqlite:///instance/dana.db"

    SECRET_KEY: str | None = None
    JWT_SECRET_KEY: str | None = None
    ENCRYPTION_KEYS: str | None = None
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    ACCESS_TOKEN_TTL_SECONDS: int = 15 * 60
    REFRESH_TOKEN_TTL_SECONDS: int = 30 * 24 * 3600
    # Browser sign-in (/login): signed out after this long without a request, and after this
    # long in all, whatever the activity.
    WEB_SESSION_IDLE_MINUTES: int = 30
    WEB_SESSION_MAX_HOURS: int = 12

    DATA_BACKEND: Literal["sql", "supabase"] = "sql"
    SUPABASE_URL: str | None = None
    SUPABASE_KEY: str | None = None
    SUPABASE_JWT_SECRET: str | None = None

    META_APP_SECRET: str | None = None
    META_VERIFY_TOKEN: str | None = None
    INSTAGRAM_APP_SECRET: str | None = None
    GRAPH_API_URL: str = "https://graph.facebook.com"
    GRAPH_API_VERSION: str = "v21.0"
    # Instagram accounts use Graph too, or graph.instagram.com with Instagram Login tokens.
    INSTAGRAM_GRAPH_API_URL: str | None = None
    GRAPH_TIMEOUT_SECONDS: float = 10.0
    GRAPH_RETRY_ATTEMPTS: int = 4
    GRAPH_RETRY_WAIT_SECONDS: float = 0.5
    # Base URL of the frontend, used in links (e.g. in hand-off tasks).
    APP_URL: str = "http://127.0.0.1:5000"
    # Answering is only allowed within this many hours of the customer's last message.
    MESSAGING_WINDOW_HOURS: int = 24

    AI_PROVIDER: Literal["openai", "local"] | None = None
    OPENAI_API_KEY: str | None = None
    OPENAI_BASE_URL: str | None = None
    OPENAI_MODEL: str = "gpt-4o-mini"
    OPENAI_TIMEOUT_SECONDS: float = 20.0
    OPENAI_MAX_RETRIES: int = 2
    # auto: ask for a JSON-schema reply, step down to JSON mode, then plain text, once per
    # server that refuses it (remembered per base URL); on: schema only; off: JSON mode first.
    OPENAI_STRUCTURED_OUTPUT: Literal["auto", "on", "off"] = "auto"

    REDIS_URL: str | None = None
    AUTOMATION_QUEUE: Literal["inline", "rq"] = "inline"
    # RQ (AUTOMATION_QUEUE=rq): seconds to wait before each retry of a failing event (one
    # retry per value; comma-separated in the environment), and how often a busy worker
    # heartbeats. A worker silent for 3 heartbeats is dead: its job is re-run elsewhere.
    RQ_RETRY_INTERVALS: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [2, 10, 60])
    RQ_HEARTBEAT_SECONDS: int = Field(default=10, ge=1, le=300)
    # The event table is the outbox (services/automation_queue.py): an event whose run holds
    # no live lease for EVENT_STALE_SECONDS is taken again by the sweep that every process
    # running events does at start-up and every EVENT_SWEEP_SECONDS; an event whose runs
    # were interrupted EVENT_MAX_ATTEMPTS times is `dead` (listed, replayable).
    EVENT_STALE_SECONDS: int = Field(default=12, ge=2, le=3600)
    EVENT_SWEEP_SECONDS: float = Field(default=4, gt=0, le=600)
    EVENT_MAX_ATTEMPTS: int = Field(default=5, ge=1, le=100)

    # NoDecode: the env value is the documented comma-separated list, not JSON.
    # Reverse proxies in front of Dana (load balancer, nginx): their X-Forwarded-For/-Proto
    # are trusted for this many hops, so rate limits and logs see the real client address.
    TRUSTED_PROXY_HOPS: int = Field(default=0, ge=0, le=5)
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    RATE_LIMIT_AUTH: str = "10 per minute"
    # Signed webhooks (/webhooks/*) are exempt from API limits; deliveries whose signature
    # fails are limited per client IP (an authentic delivery is never refused by it).
    RATE_LIMIT_WEBHOOK_FORGED: str = "60 per minute"
    RATE_LIMIT_ENABLED: bool = True

    SLACK_BOT_TOKEN: str | None = None
    SLACK_CHANNEL_ID: str | None = None
    SLACK_SIGNING_SECRET: str | None = None
    SLACK_API_URL: str | None = None
    # CRM, help-desk and analytics services (tests point them at loopback fakes).
    HUBSPOT_API_URL: str = "https://api.hubapi.com"
    SALESFORCE_API_VERSION: str = Field(default="62.0", pattern=r"^\d{2,3}\.\d$")
    # the hosts (or parent domains) a Salesforce instance_url may name, so an integration
    # cannot send its token, or Dana's requests, to any other server
    SALESFORCE_ALLOWED_HOSTS: Annotated[list[str], NoDecode] = Field(default_factory=lambda: [
        "salesforce.com", "force.com", "cloudforce.com", "salesforce.mil",
        "sfcrmproducts.cn"])
    # default https://{subdomain}.zendesk.com; "{subdomain}" in an override is filled in
    ZENDESK_API_URL: str | None = None
    # Zendesk webhooks older than this (X-Zendesk-Webhook-Signature-Timestamp) are refused.
    ZENDESK_WEBHOOK_TOLERANCE_SECONDS: int = Field(default=300, ge=1, le=3600)
    # Google Analytics 4 Measurement Protocol endpoint; the check uses its /debug twin.
    GA_MEASUREMENT_URL: str = "https://www.google-analytics.com/mp/collect"

    # Stripe (paid plans). Without STRIPE_SECRET_KEY no payment provider is configured and
    # paid plans are granted by an admin only. STRIPE_API_URL is the library's api_base
    # (tests point it at a loopback fake). A failed renewal keeps the paid plan for
    # STRIPE_GRACE_DAYS, then the user is on Free until an invoice is paid.
    STRIPE_SECRET_KEY: str | None = None
    STRIPE_WEBHOOK_SECRET: str | None = None
    STRIPE_API_URL: str | None = None
    STRIPE_GRACE_DAYS: int = Field(default=7, ge=0, le=90)
    STRIPE_WEBHOOK_TOLERANCE_SECONDS: int = Field(default=300, ge=1, le=3600)
    STRIPE_TIMEOUT_SECONDS: float = 10.0
    STRIPE_MAX_RETRIES: int = Field(default=2, ge=0, le=5)
    # where Stripe Checkout sends the user back (default: APP_URL + /app?checkout=...)
    STRIPE_SUCCESS_URL: str | None = None
    STRIPE_CANCEL_URL: str | None = None
    # Integrations at run time: bounded retries with exponential back-off; a service's
    # Retry-After is honoured up to INTEGRATION_RETRY_MAX_WAIT_SECONDS.
    INTEGRATION_RETRY_ATTEMPTS: int = Field(default=3, ge=1, le=10)
    INTEGRATION_RETRY_WAIT_SECONDS: float = Field(default=0.5, ge=0, le=60)
    INTEGRATION_RETRY_MAX_WAIT_SECONDS: float = Field(default=30.0, ge=0, le=300)
    # An extra CA bundle (PEM) trusted for SMTP TLS, e.g. a company's internal CA. TLS is
    # always verified; this only changes which CAs are trusted.
    SMTP_CA_FILE: str | None = None
    # Hosted setups: the only SMTP hosts users may configure (comma-separated; empty = any),
    # so that an e-mail integration cannot be pointed at internal services.
    SMTP_ALLOWED_HOSTS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Database connectors (MySQL, PostgreSQL, SQL Server, MongoDB): the hosts users may point
    # them at (comma-separated names, IPs or CIDR ranges; empty = any public host). Loopback,
    # private, link-local and other internal addresses are refused unless listed here, so a
    # hosted Dana cannot be used to reach its own network.
    DB_CONNECTOR_ALLOWED_HOSTS: Annotated[list[str], NoDecode] = Field(default_factory=list)

    LOG_FORMAT: Literal["plain", "json"] = "plain"
    LOG_LEVEL: str = "INFO"
    MAX_CONTENT_LENGTH: int = 5 * 1024 * 1024

    @field_validator("CORS_ORIGINS", "SMTP_ALLOWED_HOSTS", "DB_CONNECTOR_ALLOWED_HOSTS",
                     "SALESFORCE_ALLOWED_HOSTS",
                     mode="before")
    @classmethod
    def _split_origins(cls, value):
        """Accept a comma-separated string (the env form) as well as a list."""
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [o.strip() for o in value.split(",") if o.strip()]
        return value or []

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """A SQLAlchemy URL: refused at start, not at the first query."""
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("DATABASE_URL is not a database URL (expected e.g. "
                             "sqlite:///instance/dana.db or postgresql://user@host:5432/dana)"
                             ) from None
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """redis://, rediss:// or unix://: Redis' client would otherwise fail with a traceback."""
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix:// "
                             "(e.g. redis://127.0.0.1:6379/0)")
        return value or None

    @field_validator("RATE_LIMIT_AUTH", "RATE_LIMIT_WEBHOOK_FORGED")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A limit in Flask-Limiter's notation ("60 per minute"): a typo fails at start-up,
        not on the first request that needs it.
        """
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '60 per minute'") from None
        return value

    @field_validator("RQ_RETRY_INTERVALS", mode="before")
    @classmethod
    def _split_intervals(cls, value):
        """Accept "2,10,60" (the env form) as well as a list; an empty string means no retry."""
        if isinstance(value, str):
            return [int(v) for v in value.replace(" ", "").split(",") if v]
        return value

    @field_validator("RQ_RETRY_INTERVALS")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if any(v < 0 for v in value):
            raise ValueError("RQ_RETRY_INTERVALS must be seconds >= 0")
        return value

    @field_validator("CORS_ORIGINS")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        """Credentials are allowed, so a wildcard origin would let any site in."""
        if "*" in value:
            raise ValueError("CORS_ORIGINS must list origins; '*' is not allowed")
        return value

    @model_validator(mode="after")
    def _derive(self) -> "Settings":
        """Fill the defaults that depend on other settings."""
        if self.INSTAGRAM_APP_SECRET is None:
            self.INSTAGRAM_APP_SECRET = self.META_APP_SECRET
        if self.INSTAGRAM_GRAPH_API_URL is None:
            self.INSTAGRAM_GRAPH_API_URL = self.GRAPH_API_URL
        if self.AI_PROVIDER is None:
            self.AI_PROVIDER = "openai" if self.OPENAI_API_KEY else "local"
        base = self.APP_URL.rstrip("/")
        if self.STRIPE_SUCCESS_URL is None:
            self.STRIPE_SUCCESS_URL = f"{base}/app?checkout=success"
        if self.STRIPE_CANCEL_URL is None:
            self.STRIPE_CANCEL_URL = f"{base}/app?checkout=canceled"
        if self.AUTOMATION_QUEUE == "rq" and not self.REDIS_URL:
            raise ValueError("AUTOMATION_QUEUE=rq needs REDIS_URL")
        return self

    @property
    def encryption_keys(self) -> list[str]:
        """Fernet keys, newest first."""
        return [k.strip() for k in (self.ENCRYPTION_KEYS or "").split(",") if k.strip()]


def _instance_secrets_file(settings: Settings) -> Path:
    return Path(settings.INSTANCE_PATH) / "secrets.json"


def _ensure_secrets(settings: Settings) -> None:
    """Fill missing secrets from (or generate them into) instance/secrets.json.

    In production nothing is generated: a missing secret stops the start with its name.
    """
    missing = [name for name in GENERATED_SECRETS if not getattr(settings, name)]
    if not missing:
        return
    if settings.DANA_ENV == "production":
        raise ConfigError(
            "DANA_ENV=production needs these settings, which are not set: " + ", ".join(missing)
        )
    path = _instance_secrets_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    generators = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
    }
    changed = False
    for name in missing:
        if name not in stored:
            stored[name] = generators[name]()
            changed = True
        setattr(settings, name, stored[name])
    if changed:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    os.chmod(path, 0o600)


def _check(settings: Settings) -> None:
    """Validate values that pydantic cannot see in isolation."""
    for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
        if len(getattr(settings, name).encode()) < 32:
            raise ConfigError(f"{name} must be at least 32 bytes long")
    for key in settings.encryption_keys:
        try:
            Fernet(key)
        except Exception as exc:  # cryptography raises ValueError/binascii.Error
            raise ConfigError("ENCRYPTION_KEYS holds a value that is not a Fernet key") from exc


def load_settings(**overrides) -> Settings:
    """Build the settings from the environment, apply overrides, fill secrets, validate."""
    try:
        settings = Settings(**overrides)
    except SettingsError as exc:  # a value pydantic-settings could not even parse
        raise ConfigError(str(exc)) from None
    except UnicodeDecodeError:
        env_file = overrides.get("_env_file", Settings.model_config.get("env_file"))
        raise ConfigError(f"the settings file {env_file} is not UTF-8 text: save it as UTF-8"
                          ) from None
    except Exception as exc:  # pydantic.ValidationError: say which setting, no trace
        errors = getattr(exc, "errors", None)
        if callable(errors):
            names = ", ".join(str(e["loc"][0]) if e["loc"] else e["msg"] for e in errors())
            msgs = "; ".join(e["msg"].removeprefix("Value error, ") for e in errors())
            raise ConfigError(f"invalid setting(s) {names}: {msgs}") from None
        raise
    _ensure_secrets(settings)
    _check(settings)
    return settings


SETTINGS_KEY = "DANA_SETTINGS"
T = TypeVar("T")


def current_settings(app: Flask | None = None) -> Settings:
    """The settings of `app` (default: the current app), built by create_app.

    The one accessor: settings are never read at import time, always through the app.
    """
    return (app or current_app).config[SETTINGS_KEY]


_app_resource_guard = threading.Lock()


def app_resource(key: str, make: Callable[[], T]) -> T:
    """The current app's `key` in app.extensions, made by make() on first use in each process
    (an engine, a client, a thread: never built at import time, never shared across a fork).
    """
    extensions = current_app.extensions
    resource = extensions.get(key)
    if resource is None:
        with _app_resource_guard:
            resource = extensions.get(key)
            if resource is None:
                resource = extensions[key] = make()
    return resource
