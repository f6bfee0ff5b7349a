"""Notifications: a durable outbox written with each workflow change (``outbox``), the channels
that carry it (``channels``: e-mail, webhooks, Slack), and the worker that delivers it (``deliver``)."""
