"""Delivery channels: the log (always on), a signed JSON webhook and e-mail over SMTP.

A channel's ``send`` returns a short detail of what happened (stored with the attempt) or raises
:class:`DeliveryError`; its messages never contain a secret (webhook URL, HMAC key, SMTP password).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from urllib.parse import urlsplit

from fairness_pipeline.alerts.model import REVIEW_LEVELS, DeliveryError
from fairness_pipeline.alerts.payload import AlertMessage

SIGNATURE_HEADER = "X-Fairness-Signature"
DELIVERY_HEADER = "X-Fairness-Delivery"
EVENT_HEADER = "X-Fairness-Event"
USER_AGENT = "fairness-pipeline-alerts/1"

RETRYABLE_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

logger = logging.getLogger("fairness_pipeline.alerts")


class Channel(Protocol):
    """Anything that can hand an :class:`AlertMessage` over; ``name`` keys its delivery records."""

    name: str

    def send(self, message: AlertMessage) -> str: ...


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the exact body bytes>``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time); what a receiver runs."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


class LogChannel:
    """Writes the alert as one JSON line to a logger: WARNING for HIGH, CRITICAL or escalated alerts, else INFO."""

    def __init__(self, log: logging.Logger | None = None, name: str = "log") -> None:
        self.name = name
        self._log = log or logger

    def send(self, message: AlertMessage) -> str:
        severity = logging.WARNING if message.level in REVIEW_LEVELS or message.escalated else logging.INFO
        self._log.log(severity, "fairness alert: %s", message.body().decode("utf-8"))
        return "logged"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook answers itself; a redirect would resend the payload elsewhere (or drop it as a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _RetryableError(Exception):
    pass


class WebhookChannel:
    """HTTP POST of the alert's JSON, signed with HMAC-SHA256 in ``X-Fairness-Signature``.

    Each ``send`` makes up to ``1 + retries`` requests, sleeping ``backoff * 2**i`` seconds between them; connection
    errors, timeouts, 408, 425, 429 and 5xx are retried, other statuses (including redirects) fail at once.

    ``X-Fairness-Delivery`` (and the body's ``delivery_id``) is a UUID naming this delivery: this alert on this
    channel at this stage (initial or escalation). It is the same in every request of a ``send`` and in the retries
    of later ticks, and never repeats across databases or deployments, so a receiver may de-duplicate on it: a
    request whose delivery id it has already processed is a repeat after a lost response. An escalation is a new
    delivery with its own id. (The alert id is not unique outside its database; do not de-duplicate on it.)
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        name: str = "webhook",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the webhook URL must be an http(s) URL with a host")
        if not secret:
            raise ValueError("a webhook needs a signing secret")
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError("webhook timeout must be positive, retries and backoff non-negative")
        self.name = name
        self._url = url
        self._secret = secret
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:  # the URL may hold a token: show its host only
        return f"WebhookChannel(host={urlsplit(self._url).hostname!r}, timeout={self.timeout}, retries={self.retries})"

    def send(self, message: AlertMessage) -> str:
        body = message.body()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(self._secret, body),
            DELIVERY_HEADER: str(message.delivery_id),
            EVENT_HEADER: "escalation" if message.escalated else "alert",
        }
        errors: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status = self._post(body, headers)
            except _RetryableError as exc:
                errors.append(str(exc))
                continue
            except DeliveryError as exc:
                raise DeliveryError(f"{exc} after {attempt + 1} request(s)", unavailable=exc.unavailable) from None
            return f"HTTP {status} after {attempt + 1} request(s)"
        raise DeliveryError(f"{errors[-1]} after {self.retries + 1} request(s)", unavailable=True)

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(1 << 16)
                return response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            text = f"HTTP {status} ({exc.reason})" if exc.reason else f"HTTP {status}"
            if status in RETRYABLE_HTTP_STATUS:
                raise _RetryableError(text) from None
            # 401/403/404/405 and redirects are the receiver's configuration; other 4xx concern this request
            raise DeliveryError(text, unavailable=status in (401, 403, 404, 405) or status < 400) from None
        except TimeoutError:
            raise _RetryableError(f"timed out after {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _RetryableError(f"timed out after {self.timeout:g} s") from None
            raise _RetryableError(f"connection failed: {reason}") from None
        except (OSError, ValueError) as exc:  # e.g. a connection reset while reading
            raise _RetryableError(f"connection failed: {type(exc).__name__}: {exc}") from None


class EmailChannel:
    """The alert as a plain-text e-mail (with the JSON attached) over SMTP, upgraded with STARTTLS when asked.

    Credentials are only sent over STARTTLS; a server that does not offer it fails the attempt rather than
    receiving the mail in clear.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        starttls: bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "email",
    ) -> None:
        recipients = [r.strip() for r in recipients if r and r.strip()]
        if not host or not sender or not recipients:
            raise ValueError("e-mail alerts need an SMTP host, a sender and at least one recipient")
        if not 0 < port < 65536:
            raise ValueError(f"SMTP port {port} is out of range")
        if password and not username:
            raise ValueError("an SMTP password was given without a username")
        if username and not starttls:
            raise ValueError("SMTP credentials are only sent over STARTTLS; enable it")
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.starttls = starttls
        self._username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        recipients = len(self.recipients)
        return f"EmailChannel(host={self.host!r}, port={self.port}, starttls={self.starttls}, to={recipients})"

    def build(self, message: AlertMessage) -> EmailMessage:
        """The e-mail for ``message`` (separate so tests and previews can look at it)."""
        mail = EmailMessage()
        mail["Subject"] = message.subject()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = format_datetime(message.sent_at)
        mail["Message-ID"] = make_msgid(f"fairness-alert-{message.delivery_id}", self.sender.rpartition("@")[2])
        mail["X-Fairness-Alert-Id"] = str(message.alert_id)
        mail[DELIVERY_HEADER] = str(message.delivery_id)
        mail[EVENT_HEADER] = "escalation" if message.escalated else "alert"
        mail.set_content(message.text())
        mail.add_attachment(
            message.body(), maintype="application", subtype="json", filename=f"fairness-alert-{message.alert_id}.json"
        )
        return mail

    def send(self, message: AlertMessage) -> str:
        mail = self.build(message)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(
                            f"SMTP server {self.host}:{self.port} does not offer STARTTLS", unavailable=True
                        )
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self._username:
                    smtp.login(self._username, self._password or "")
                refused = smtp.send_message(mail, self.sender, self.recipients)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP authentication failed ({exc.smtp_code})", unavailable=True) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"SMTP server refused all {len(exc.recipients)} recipient(s)", unavailable=True
            ) from None
        except smtplib.SMTPDataError as exc:  # this message was refused (size, content)
            raise DeliveryError(f"SMTP error {exc.smtp_code}: {_text(exc.smtp_error)}") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP error {exc.smtp_code}: {_text(exc.smtp_error)}", unavailable=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery failed: {type(exc).__name__}: {exc}", unavailable=True) from None
        accepted = len(self.recipients) - len(refused)
        detail = f"accepted by {self.host}:{self.port} for {accepted} recipient(s)"
        return detail + (f", {len(refused)} refused" if refused else "")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
