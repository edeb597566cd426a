"""The ten specified integration types, including the ones not built yet.

Each planned type has its real config model (DESIGN.md, "Config fields") so that
`/api/integrations/types` shows an accurate JSON schema today, and a placeholder connector
with `available = False`. Building a type = its module (subclassing IntegrationConnector,
reusing the config model below) plus one line in automation.registry.INTEGRATIONS, which
replaces the placeholder.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from automation.integrations.base import IntegrationCheckFailed, IntegrationConnector

SECRET = {"writeOnly": True, "format": "password"}
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class _Config(BaseModel):
    """Config models refuse unknown fields so that a typo is a 400, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SlackConfig(_Config):
    """A Slack workspace: bot token (xoxb-...), the channel hand-offs go to, signing secret."""

    bot_token: str = Field(min_length=8, max_length=300, json_schema_extra=SECRET)
    channel_id: str = Field(min_length=1, max_length=64, description="e.g. C0123456789")
    signing_secret: str | None = Field(default=None, max_length=300, json_schema_extra=SECRET)


class EmailConfig(_Config):
    """An SMTP server that sends hand-offs and digests to the team's addresses."""

    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int | None = Field(default=None, ge=1, le=65535,
                                  description="default: 587 starttls, 465 ssl, 25 none")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1000, json_schema_extra=SECRET)
    from_address: EmailStr
    to_addresses: list[EmailStr] = Field(min_length=1, max_length=50)
    reply_to: EmailStr | None = Field(
        default=None, description="where replies go; default: the to_addresses (the team)")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @model_validator(mode="after")
    def _port_and_auth(self) -> EmailConfig:
        if self.smtp_port is None:
            self.smtp_port = _DEFAULT_PORTS[self.security]
        if self.password and not self.username:
            raise ValueError("username is required when a password is given")
        return self


class HubSpotConfig(_Config):
    """A HubSpot private app."""

    access_token: str = Field(min_length=8, max_length=500, json_schema_extra=SECRET)


class SalesforceConfig(_Config):
    """A Salesforce org (its My Domain URL) and an OAuth access token."""

    instance_url: str = Field(pattern=r"^https://", max_length=300)
    access_token: str = Field(min_length=8, max_length=2000, json_schema_extra=SECRET)


class ZendeskConfig(_Config):
    """A Zendesk account: subdomain, agent e-mail and API token."""

    subdomain: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    email: EmailStr
    api_token: str = Field(min_length=8, max_length=300, json_schema_extra=SECRET)


class GoogleAnalyticsConfig(_Config):
    """A GA4 property's Measurement Protocol credentials."""

    measurement_id: str = Field(pattern=r"^G-[A-Z0-9]+$")
    api_secret: str = Field(min_length=8, max_length=300, json_schema_extra=SECRET)


class SqlDatabaseConfig(_Config):
    """A SQL database (MySQL, PostgreSQL, SQL Server) and its named, parameterized queries."""

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    database: str = Field(min_length=1, max_length=128)
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(max_length=1000, json_schema_extra=SECRET)
    queries: dict[str, str] = Field(default_factory=dict, max_length=50,
                                    description='{name: "SELECT ... WHERE id = :param"}')


class MongoQuery(_Config):
    """A named MongoDB lookup: a collection and a filter (values may be :params)."""

    collection: str = Field(min_length=1, max_length=120)
    filter: dict = Field(default_factory=dict)


class MongoDbConfig(_Config):
    """A MongoDB database and its named lookups."""

    uri: str = Field(pattern=r"^mongodb(\+srv)?://", max_length=1000, json_schema_extra=SECRET)
    database: str = Field(min_length=1, max_length=128)
    queries: dict[str, MongoQuery] = Field(default_factory=dict, max_length=50)


class PlannedConnector(IntegrationConnector):
    """A specified type that is not built yet: listed in /types, refused at configuration."""

    available: ClassVar[bool] = False

    def check(self) -> str:
        """Never reached through the API (unavailable types are refused first)."""
        raise IntegrationCheckFailed(f"the {self.name} integration is not available yet")


def _planned(type_: str, name: str, category: str, model: type[BaseModel],
             secrets: set[str]) -> type[IntegrationConnector]:
    return type(f"Planned_{type_}", (PlannedConnector,), {
        "type": type_, "name": name, "category": category, "config_model": model,
        "secret_fields": frozenset(secrets), "__doc__": f"{name}: specified, not built yet."})


# In the order /api/integrations/types lists them.
PLANNED: dict[str, type[IntegrationConnector]] = {
    "slack": _planned("slack", "Slack", "messaging", SlackConfig,
                      {"bot_token", "signing_secret"}),
    "email": _planned("email", "E-mail (SMTP)", "email", EmailConfig, {"password"}),
    "hubspot": _planned("hubspot", "HubSpot", "crm", HubSpotConfig, {"access_token"}),
    "salesforce": _planned("salesforce", "Salesforce", "crm", SalesforceConfig,
                           {"access_token"}),
    "zendesk": _planned("zendesk", "Zendesk", "helpdesk", ZendeskConfig, {"api_token"}),
    "google_analytics": _planned("google_analytics", "Google Analytics 4", "analytics",
                                 GoogleAnalyticsConfig, {"api_secret"}),
    "mysql": _planned("mysql", "MySQL / MariaDB", "database", SqlDatabaseConfig, {"password"}),
    "postgresql": _planned("postgresql", "PostgreSQL", "database", SqlDatabaseConfig,
                           {"password"}),
    "mongodb": _planned("mongodb", "MongoDB", "database", MongoDbConfig, {"uri"}),
    "sqlserver": _planned("sqlserver", "Microsoft SQL Server", "database", SqlDatabaseConfig,
                          {"password"}),
}
