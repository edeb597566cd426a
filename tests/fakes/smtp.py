"""A real SMTP server for tests (aiosmtpd in this process), plus a server that hangs up.

    server = SmtpServer(users={"agent": "secret"}).start()       # AUTH over plain SMTP
    server = SmtpServer(users=..., tls=make_tls(tmp_path)).start()  # STARTTLS required
    server = SmtpServer(users=..., tls=..., implicit_tls=True).start()  # SMTPS ("ssl")
    ...
    [mail] = server.messages     # .mail_from, .rcpt_tos, .message (email.message.EmailMessage)

`tls` comes from make_tls(): a throw-away CA and a server certificate for 127.0.0.1 made with
`cryptography`, so clients verify TLS for real (they trust the CA through SMTP_CA_FILE).
"""
from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TlsFiles:
    """PEM files: the CA clients trust, and the server's certificate chain and key."""

    ca_file: str
    cert_file: str
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_tls(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A fresh CA and a server certificate for `host` signed by it (valid for one day)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dana test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(str(directory / "ca.pem"), str(directory / "server.pem"),
                     str(directory / "server.key"))
    Path(files.ca_file).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(files.key_file).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


@dataclass
class Received:
    """One accepted message: the envelope and the parsed e-mail."""

    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    login: str | None


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):
        self.server.messages.append(Received(
            envelope.mail_from, list(envelope.rcpt_tos),
            email.message_from_bytes(envelope.original_content or envelope.content,
                                     policy=email.policy.default),
            session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword)
            else None))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with AUTH against `users` (login -> password), optional TLS."""

    def __init__(self, users: dict[str, str] | None = None, tls: TlsFiles | None = None,
                 implicit_tls: bool = False):
        self.users = dict(users or {})
        self.messages: list[Received] = []
        self.logins: list[tuple[str, bool]] = []   # (login, accepted)
        self.port = free_port()
        self.host = "127.0.0.1"
        kwargs = {}
        if tls and implicit_tls:
            kwargs["ssl_context"] = tls.server_context()
        elif tls:
            kwargs.update(tls_context=tls.server_context(), require_starttls=True)
        self.controller = Controller(
            _Handler(self), hostname=self.host, port=self.port,
            authenticator=self._authenticate if self.users else None,
            # (with implicit TLS aiosmtpd cannot tell the session is encrypted: AUTH is allowed)
            auth_require_tls=bool(tls) and not implicit_tls,
            # AUTH is offered either way; required only with TLS (aiosmtpd warns otherwise).
            auth_required=bool(self.users and tls and not implicit_tls), **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.users.get(login) == password
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class HangUpServer:
    """Accepts SMTP connections, greets, then closes the socket on the first command."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.host, self.port = self.sock.getsockname()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                try:
                    conn.sendall(b"220 flaky.example ESMTP\r\n")
                    conn.settimeout(2)
                    conn.recv(1024)
                except OSError:
                    pass

    def start(self) -> HangUpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
