"""Sending one outbox row: e-mail over SMTP, a signed webhook, a Slack message.

Each sender returns on success and raises ``DeliveryFailed`` (a message a person can act on)
otherwise; the caller records the attempt and schedules the next.

- E-mail: ``smtplib`` with STARTTLS, implicit TLS or neither, and a login when a user name
  is set.
- Webhooks: a JSON POST signed as the Standard Webhooks specification says
  (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), by the ``standardwebhooks``
  library; the id is the outbox row's (``msg_<id>``), the same on every retry, so a
  receiver can drop duplicates.
- Slack: an incoming webhook URL gets the message as posted text (``slack_sdk``'s
  ``WebhookClient``); a member id gets a direct message from the bot (``chat.postMessage``
  through ``WebClient``, whose base URL is the setting ``slack_api_url``).
"""

from __future__ import annotations

import smtplib
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

from refmatch.app.notify.outbox import Delivery
from refmatch.config import Settings

TIMEOUT = 20  # seconds for any one delivery


class DeliveryFailed(Exception):
    pass


def send_email(settings: Settings, delivery: Delivery) -> None:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = delivery.recipient
    msg["Subject"] = delivery.subject
    msg["Message-ID"] = make_msgid(f"refmatch.{delivery.id}")
    msg.set_content(delivery.body)
    try:
        if settings.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(msg)
    except smtplib.SMTPNotSupportedError:
        raise DeliveryFailed(
            f"SMTP server {settings.smtp_host}:{settings.smtp_port} does not offer STARTTLS "
            "(set smtp_security to ssl or none)"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from None


def send_webhook(settings: Settings, delivery: Delivery) -> None:
    from standardwebhooks.webhooks import Webhook

    now = datetime.now(UTC)  # the wall clock, always: receivers refuse a timestamp 5 minutes off theirs
    msg_id = f"msg_{delivery.id}"
    body = delivery.payload.encode()
    signature = Webhook(settings.webhook_secret).sign(msg_id, now, delivery.payload)
    request = urllib.request.Request(
        delivery.recipient,
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "user-agent": "refmatch-webhooks",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"webhook {delivery.recipient} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"webhook {delivery.recipient}: {reason}") from None


def send_slack(settings: Settings, delivery: Delivery) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.webhook import WebhookClient

    text = delivery.body
    try:
        if delivery.recipient.startswith(("http://", "https://")):
            answer = WebhookClient(delivery.recipient, timeout=TIMEOUT).send(text=text)
            if answer.status_code != 200:
                raise DeliveryFailed(f"Slack webhook answered {answer.status_code}: {answer.body[:200]}")
        else:
            client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=TIMEOUT)
            client.chat_postMessage(channel=delivery.recipient, text=text)
    except SlackApiError as exc:
        error = exc.response.get("error")
        raise DeliveryFailed(f"Slack refused the message to {delivery.recipient}: {error}") from None
    except (SlackClientError, OSError) as exc:
        raise DeliveryFailed(f"Slack: {exc}") from None


def send(settings: Settings, delivery: Delivery) -> None:
    """Send one delivery by its channel (DeliveryFailed when it did not go)."""
    missing = {"email": ("smtp_host", settings.smtp_host), "webhook": ("webhook_secret", settings.webhook_secret)}
    if delivery.channel == "slack" and not delivery.recipient.startswith(("http://", "https://")):
        missing["slack"] = ("slack_bot_token", settings.slack_bot_token)
    name, value = missing.get(delivery.channel, ("", "set"))
    if not value:
        raise DeliveryFailed(f"the setting {name} is empty now: set it, then retry")
    if delivery.channel == "email":
        send_email(settings, delivery)
    elif delivery.channel == "webhook":
        send_webhook(settings, delivery)
    elif delivery.channel == "slack":
        send_slack(settings, delivery)
    else:
        raise DeliveryFailed(f"unknown channel {delivery.channel!r}")
