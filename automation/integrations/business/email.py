"""E-mail over SMTP (standard library smtplib): hand-offs, `notify` actions and daily digests.

Security is STARTTLS, implicit TLS ("ssl") or none, always with a verifying TLS context
(SMTP_CA_FILE adds a CA, e.g. a company's internal one; verification is never turned off).
Every message has a plain-text and an HTML part and a Reply-To (the `reply_to` setting, else
the team's `to_addresses`) so that answering it reaches the agents, not a no-reply sender.
"""
from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar

from automation.integrations.base import (
    IntegrationCheckFailed,
    IntegrationConnector,
    IntegrationError,
    Notification,
)
from automation.integrations.catalogue import EmailConfig

# E-mail is for people reading an inbox: no message per customer message or new conversation.
HANDLED_KINDS = frozenset({"handoff", "notify", "digest"})
_SUBJECTS = {"handoff": "A customer needs a person", "digest": "Your daily Dana digest",
             "notify": "Dana notification"}


class _HostNotAllowed(Exception):
    """The configured SMTP host is outside SMTP_ALLOWED_HOSTS (nothing was contacted)."""


class EmailConnector(IntegrationConnector):
    """Sends notifications through the business's SMTP server."""

    type: ClassVar[str] = "email"
    name: ClassVar[str] = "E-mail (SMTP)"
    category: ClassVar[str] = "email"
    config_model = EmailConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password"})
    operations: ClassVar[frozenset[str]] = frozenset({"notify"})
    config: EmailConfig

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca_file = getattr(self.settings, "SMTP_CA_FILE", None)
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        return context

    def _allowed(self) -> bool:
        allowed = getattr(self.settings, "SMTP_ALLOWED_HOSTS", None) or []
        return not allowed or self.config.smtp_host.lower() in {h.lower() for h in allowed}

    def _connect(self) -> smtplib.SMTP:
        """An authenticated (when configured) SMTP session; the caller quits it."""
        cfg = self.config
        if not self._allowed():
            raise _HostNotAllowed(f"the SMTP host {cfg.smtp_host} is not allowed here "
                                  "(SMTP_ALLOWED_HOSTS)")
        if cfg.security == "ssl":
            smtp = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds,
                                    context=self._tls_context())
        else:
            smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds)
        try:
            smtp.ehlo()
            if cfg.security == "starttls":
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
            return smtp
        except BaseException:
            _close(smtp)
            raise

    def check(self) -> str:
        """Connect, negotiate TLS and log in (or NOOP without credentials); nothing is sent."""
        try:
            smtp = self._connect()
            try:
                if not self.config.username:
                    code, _ = smtp.noop()
                    if code != 250:
                        raise IntegrationCheckFailed(f"the SMTP server answered NOOP with {code}")
            finally:
                _close(smtp)
        except IntegrationCheckFailed:
            raise
        except Exception as exc:  # smtplib, ssl and socket errors: the server's own words
            raise IntegrationCheckFailed(_describe(exc)) from None
        how = "logged in" if self.config.username else "connected"
        return f"{how} to {self.config.smtp_host}:{self.config.smtp_port} ({self.config.security})"

    def notify(self, notification: Notification) -> dict:
        """E-mail a hand-off, a workflow notification or a digest to the team."""
        if notification.kind not in HANDLED_KINDS:
            return {"status": "skipped"}
        recipients = _recipients(notification.target) or [str(a) for a in self.config.to_addresses]
        message = self.build_message(notification, recipients)
        try:
            smtp = self._connect()
            try:
                refused = smtp.send_message(message, to_addrs=recipients)
            finally:
                _close(smtp)
        except (smtplib.SMTPAuthenticationError, _HostNotAllowed) as exc:
            raise IntegrationError(_describe(exc), permanent=True) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise IntegrationError(_describe(exc), permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            # 4xx is "try again later"; 5xx is a refusal no retry fixes.
            raise IntegrationError(_describe(exc), permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise IntegrationError(_describe(exc)) from None
        return {"status": "sent", "message_id": message["Message-ID"],
                "recipients": len(recipients) - len(refused or {})}

    def build_message(self, notification: Notification, recipients: list[str]) -> EmailMessage:
        """The e-mail: subject, plain-text and HTML parts, Reply-To the team."""
        cfg = self.config
        message = EmailMessage()
        message["Subject"] = _one_line(notification.title or _SUBJECTS.get(notification.kind,
                                                                           "Dana"))
        message["From"] = str(cfg.from_address)
        message["To"] = ", ".join(recipients)
        message["Reply-To"] = str(cfg.reply_to) if cfg.reply_to else ", ".join(
            str(a) for a in cfg.to_addresses)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=str(cfg.from_address).rsplit("@", 1)[-1])
        plain = notification.text
        if notification.link:
            plain += f"\n\nOpen the conversation: {notification.link}"
        message.set_content(plain)
        message.add_alternative(_html(notification), subtype="html")
        return message


def _html(notification: Notification) -> str:
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>"
                         for p in notification.text.split("\n\n") if p.strip())
    title = f"<h2>{html.escape(notification.title)}</h2>" if notification.title else ""
    link = (f'<p><a href="{html.escape(notification.link, quote=True)}">Open the conversation'
            f"</a></p>" if notification.link else "")
    return f"<!doctype html><html><body>{title}{paragraphs}{link}</body></html>"


def _recipients(target: str | None) -> list[str]:
    return [a.strip() for a in (target or "").split(",") if a.strip()]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _describe(exc: Exception) -> str:
    """The server's reason in one line (never the credentials: smtplib does not echo them)."""
    if isinstance(exc, _HostNotAllowed):
        return str(exc)
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        what = "refused the login" if isinstance(exc, smtplib.SMTPAuthenticationError) \
            else "refused"
        return f"the SMTP server {what}: {exc.smtp_code} {_one_line(reply)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"the SMTP server refused the recipients {', '.join(exc.recipients)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the SMTP server closed the connection: {_one_line(str(exc)) or 'no reason given'}"
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error: {_one_line(str(exc))}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with the SMTP server failed: {_one_line(str(exc))}"
    if isinstance(exc, TimeoutError):
        return "the SMTP server did not answer in time"
    if isinstance(exc, OSError):
        return f"cannot reach the SMTP server: {_one_line(str(exc))}"
    return f"SMTP error: {type(exc).__name__}: {_one_line(str(exc))}"


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except Exception:  # the session is over either way
        smtp.close()
