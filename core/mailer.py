"""Outgoing mail: SMTP in production, files (the default) or the console in development.

``SMSGW_MAIL_BACKEND``: ``file`` (default; one ``.eml`` per message in
``<data_dir>/mail``), ``console``, or ``smtp`` with ``SMSGW_SMTP_URL``
(``smtp://user:pass@host:587`` with STARTTLS, ``smtps://`` for implicit TLS).

Every mail has a category: ``service`` (the default: sign-in, confirmation, security and
account notices, answers to a person's own request) is always sent; ``marketing`` (product
updates, newsletters) is sent only if no addon vetoes it for the address
(``smsgw_mail_suppressed``: a person who objected to direct marketing, or whose processing is
restricted, gets none).
"""

from __future__ import annotations

import html
import logging
import re
import os
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

CATEGORIES = ("service", "marketing")


_URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)\]]")  # a sentence's closing mark is not part of it


def html_part(text: str, lang: str, direction: str = "ltr") -> str:
    """The HTML part of a mail: its text, paragraph by paragraph, with its addresses as links."""
    paragraphs = []
    for block in text.strip().split("\n\n"):
        pieces, last = [], 0
        for m in _URL.finditer(block):
            pieces.append(html.escape(block[last:m.start()]))
            url = html.escape(m.group(0))
            pieces.append(f'<a href="{url}">{url}</a>')
            last = m.end()
        pieces.append(html.escape(block[last:]))
        paragraphs.append("<p>" + "".join(pieces).replace("\n", "<br>\n") + "</p>")
    return (f'<!doctype html>\n<html lang="{html.escape(lang)}" dir="{direction}"><head><meta charset="utf-8">'
            "</head>\n<body>\n" + "\n".join(paragraphs) + "\n</body></html>\n")


class Mailer:
    def __init__(self, backend: str, data_dir: Path, sender: str, smtp_url: str | None = None):
        if backend not in ("file", "console", "smtp"):
            raise ValueError(f"SMSGW_MAIL_BACKEND must be file, console or smtp, not {backend!r}")
        if backend == "smtp" and not smtp_url:
            raise ValueError("SMSGW_MAIL_BACKEND=smtp needs SMSGW_SMTP_URL")
        self.backend = backend
        self.dir = Path(data_dir) / "mail"
        self.sender = sender
        self.smtp_url = smtp_url
        # veto(to, category) -> list of reasons not to send; the platform wires it to its addons.
        self.veto: Callable[[str, str], list[str]] | None = None

    @classmethod
    def from_env(cls, data_dir: Path, base_domain: str, env=None) -> "Mailer":
        env = os.environ if env is None else env
        return cls(env.get("SMSGW_MAIL_BACKEND", "file"), data_dir,
                   env.get("SMSGW_MAIL_FROM", f"SMS Gateway <no-reply@{base_domain}>"),
                   env.get("SMSGW_SMTP_URL"))

    def describe(self) -> str:
        if self.backend == "file":
            return f"mail is written to {self.dir}/"
        if self.backend == "console":
            return "mail is printed to the console"
        return f"mail is sent through {urlsplit(self.smtp_url).hostname}"

    def send(self, to: str, subject: str, body: str, category: str = "service", lang: str | None = None,
             direction: str = "ltr", sender_name: str = "") -> EmailMessage | None:
        """Send one mail; ``None`` when a ``marketing`` mail was vetoed for ``to`` (logged, not sent).

        With ``lang`` (the recipient's language, see :meth:`core.platform.Platform.send_mail`) the
        mail says so (``Content-Language``) and carries an HTML part made from the same text, marked
        with that language and its writing ``direction``."""
        if category not in CATEGORIES:
            raise ValueError(f"mail category must be one of {', '.join(CATEGORIES)}, not {category!r}")
        if category != "service" and self.veto is not None:
            reasons = self.veto(to, category)
            if reasons:
                log.info("%s mail to %s not sent: %s", category, to, "; ".join(reasons))
                return None
        msg = EmailMessage()
        msg["From"] = self.sender if not sender_name else formataddr((sender_name, parseaddr(self.sender)[1]))
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="smsgw")
        msg.set_content(body)
        if lang:
            msg.add_alternative(html_part(body, lang, direction), subtype="html")
            msg["Content-Language"] = lang  # after: making the alternative moves Content-* headers into the text part
        if self.backend == "file":
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}.eml"
            fd = os.open(self.dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(bytes(msg))
        elif self.backend == "console":
            print(f"--- mail to {to}: {subject}\n{body}\n---", flush=True)
        else:
            self._smtp(msg)
        log.info("mail sent to %s: %s", to, subject)
        return msg

    def _smtp(self, msg: EmailMessage) -> None:
        u = urlsplit(self.smtp_url)
        context = ssl.create_default_context()
        if u.scheme == "smtps":
            server = smtplib.SMTP_SSL(u.hostname, u.port or 465, context=context, timeout=30)
        else:
            server = smtplib.SMTP(u.hostname, u.port or 587, timeout=30)
            server.starttls(context=context)
        with server:
            if u.username:
                server.login(unquote(u.username), unquote(u.password or ""))
            server.send_message(msg)

    def outbox(self) -> list[Path]:
        """Messages written by the file backend, oldest first (for people and tests)."""
        return sorted(self.dir.glob("*.eml")) if self.dir.exists() else []
