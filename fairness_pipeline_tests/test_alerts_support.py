"""Helpers of the alert tests (no tests here): typed payloads, a webhook receiver and an SMTP server on 127.0.0.1, a
self-signed certificate, and an in-memory channel."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fairness_pipeline.alerts import AlertMessage, AppliedRule, DeliveryError, Finding, RiskAlertPayload

T0 = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
"""A fixed "now" for tests that drive the clock."""

SECRET = "test-webhook-secret-1f4c"

DAY = date(2026, 3, 9)
"""The analysed day of the test alerts."""

STARTUP_FINDING = Finding("shown->shortlisted", "company_tier", "startup", 0.58, 0.0012)


def risk_payload(tenant: str = "t1", level: str = "HIGH", day: date = DAY) -> RiskAlertPayload:
    """A risk alert payload: score 0.71 in [0.64, 0.78], one significant finding (startup at 0.58)."""
    rule = AppliedRule("significant_adverse", "significant_adverse", 0.80, "MEDIUM", level, STARTUP_FINDING)
    return RiskAlertPayload(tenant, level, day, 30, 0.71, (0.64, 0.78), {"adverse_impact": 0.4}, (rule,))


STARTUP_REASON = (
    "significant_adverse (MEDIUM -> {level}): statistically and practically significant adverse impact (impact ratio "
    "below 0.80); lowest: startup (company_tier, shown->shortlisted) at 0.58, adjusted p = 0.0012."
)
"""The reason of :func:`risk_payload`'s rule, written out by hand."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (port chosen by the OS) that records every POST.

    ``statuses`` are answered in turn (then ``default_status``); ``delay`` slows every answer down.
    """

    statuses: list[int] = field(default_factory=list)
    default_status: int = 204
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                    receiver.answered.append(status)
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/fairness?token=url-token-5e9a"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 (port chosen by the OS) keeping every message it accepts."""

    def __init__(self, **smtp_parameters) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
                sink.messages.append(envelope)
                return "250 Message accepted for delivery"

        class PortZeroController(Controller):
            def _trigger_server(self) -> None:
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self._controller = PortZeroController(Handler(), hostname="127.0.0.1", port=0, **smtp_parameters)

    @property
    def port(self) -> int:
        return self._controller.port

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only the server's self-signed certificate)."""
    cert_path, key_path = self_signed_certificate(directory)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


class RecordingChannel:
    """An in-memory channel; fails while ``failing`` is true."""

    def __init__(self, name: str = "memory", failing: bool = False) -> None:
        self.name = name
        self.failing = failing
        self.sent: list[AlertMessage] = []

    def send(self, message: AlertMessage) -> str:
        if self.failing:
            raise DeliveryError("receiver unavailable", unavailable=True)
        self.sent.append(message)
        return "kept"


@contextmanager
def connection(url: str) -> Iterator:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        yield conn
    finally:
        conn.close()


def query(conn, statement: str, params: dict | tuple | None = None) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()
