"""What every command shares: --db / --index-dir / --model, domain errors as ``Error:`` lines, progress bars.

Heavy modules (the service, hence numpy, FAISS, torch) are imported when a command
runs, never when the CLI starts, so ``refmatch --help`` answers at once.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

import click

from refmatch.config import ENCODER_BACKENDS
from refmatch.domain.errors import RefmatchError


class CliError(click.ClickException):
    """``Error: message`` on stderr and the domain error's exit code."""

    def __init__(self, error: RefmatchError):
        super().__init__(error.message)
        self.exit_code = error.exit_code  # type: ignore[misc]  # click reads it per instance; 1 or 2 here


# the commands that may create a database; any other refuses one that does not exist (a typo in --db, or
# the wrong folder, would otherwise make an empty database and answer "unknown account")
CREATES_DATABASE = frozenset({"init", "import", "demo"})


def common(func: Callable) -> Callable:
    """--db / --index-dir / --model / --encoder-backend on every command; domain errors become CLI errors."""

    @click.option("--db", "db", metavar="FILE", help="SQLite database [env REFMATCH_DB; default refmatch.db].")
    @click.option("--index-dir", metavar="DIR", help="Index directory [env REFMATCH_INDEX_DIR; default indexes].")
    @click.option("--model", metavar="NAME", help="Embedding model: path or name [env REFMATCH_MODEL].")
    @click.option(
        "--encoder-backend",
        type=click.Choice(ENCODER_BACKENDS),
        help="What runs the model [env REFMATCH_ENCODER_BACKEND; default torch].",
    )
    @functools.wraps(func)
    def wrapper(
        db: str | None, index_dir: str | None, model: str | None, encoder_backend: str | None, **kwargs: Any
    ) -> Any:
        ctx = click.get_current_context()
        encoder = (ctx.obj or {}).get("encoder")  # tests inject a fake encoder here
        try:
            from refmatch.app.service import Service
            from refmatch.config import load_settings

            settings = load_settings(
                {"db": db, "index_dir": index_dir, "model": model, "encoder_backend": encoder_backend}
            )
            # a group called on the way to a subcommand leaves the check to the subcommand
            checks = ctx.command.name not in CREATES_DATABASE and ctx.invoked_subcommand is None
            if checks and str(settings.db_path) != ":memory:":
                if not settings.db_path.exists():
                    from refmatch.domain.errors import NotFound

                    raise NotFound(
                        f"database not found: {settings.db_path} (check --db or REFMATCH_DB, or create it with "
                        "'refmatch init', 'refmatch import' or 'refmatch demo')"
                    )
            service = Service(settings, encoder=encoder)
            try:
                return func(service, **kwargs)
            finally:
                close_bars()
                service.close()
        except RefmatchError as exc:
            raise CliError(exc) from None
        except (sqlite3.Error, OSError) as exc:  # what a write outside a transaction met: one Error line too
            known = _storage(exc)
            if known is None:
                raise
            raise CliError(known) from None

    return wrapper


def _storage(exc: sqlite3.Error | OSError) -> RefmatchError | None:
    """The StorageError a low-level failure means, or None for one that is a bug (and keeps its traceback)."""
    if isinstance(exc, sqlite3.Error):
        from refmatch.store.db import storage_error

        return storage_error(exc)
    from refmatch.domain.errors import StorageError

    where = f" {exc.filename}" if exc.filename else ""
    return StorageError(f"cannot write or read{where}: {exc.strerror or exc}")


def echo_matches(result: Any, empty: str = "check consent, capacity, stage and products") -> None:
    """Each match, its score and its reasons, as every matching command prints them."""
    if not result.matches:
        click.echo(f"no eligible advocate: {empty}")
    elif getattr(result, "note", None):
        click.echo(result.note)
    for m in result.matches:
        click.echo(f"{m.rank}. {m.name} ({m.external_id})  score {m.score:.3f} ({m.strength})")
        for reason in m.reasons:
            click.echo(f"     - {reason}")


_OPEN_BARS: list[Any] = []  # closed when the command ends, so that an Error line starts a line of its own


def orphaned_or(stopping: list[int]) -> Callable[[], bool]:
    """A background loop's stop test: a signal arrived (``stopping``), or the process that started it is gone
    (a server killed with SIGKILL cannot stop its indexer and notifier: they stop by themselves)."""
    import os

    parent = os.getppid()
    return lambda: bool(stopping) or os.getppid() != parent


def progress_bars(
    enabled: bool = True,
    *,
    describe: Callable[[str], str] = lambda name: f"embedding {name}",
    unit: Callable[[str], str] = lambda _name: "text",
    scale: bool = False,
) -> Callable[[str, int], Callable[[int], None]]:
    """A factory of tqdm bars on stderr (silent when not wanted): ``factory(name, total)`` gives the
    function that advances the bar; it also has ``close``, for a caller that ends a stage early."""
    from tqdm import tqdm

    def factory(name: str, total: int) -> Callable[[int], None]:
        bar = tqdm(
            total=total or None, desc=describe(name), unit=unit(name), disable=not enabled, leave=False,
            unit_scale=scale, unit_divisor=1024 if scale else 1000,
        )  # fmt: skip
        _OPEN_BARS.append(bar)

        def advance(n: int) -> None:
            bar.update(n)

        advance.close = bar.close  # type: ignore[attr-defined]
        return advance

    return factory


def close_bars() -> None:
    while _OPEN_BARS:
        _OPEN_BARS.pop().close()


def executor_options(func: Callable) -> Callable:
    """--executor / --address / --workers / --gpus-per-worker: where a batch run or an index build does its work."""
    options = [
        click.option(
            "--executor",
            type=click.Choice(["in-process", "ray"]),
            default="in-process",
            show_default=True,
            help="Where the work runs: here, or on Ray (pip install 'refmatch[ray]'): partitions are searched and "
            "texts embedded by pools of Ray actors.",
        ),
        click.option(
            "--address", metavar="ADDR", help="With --executor ray: the cluster to join (default: a local Ray)."
        ),
        click.option("--workers", type=int, metavar="N", help="With --executor ray: actors at once [default: CPUs]."),
        click.option(
            "--gpus-per-worker",
            type=float,
            default=0.0,
            metavar="G",
            help="With --executor ray: GPUs each embedding actor asks for (with REFMATCH_DEVICE=cuda) [default: 0].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def executor_from(opts: dict[str, Any], device: str) -> Any:  # noqa: ANN401 - an Executor, imported lazily
    """The executor the options ask for; ``device``, the settings', is checked against --gpus-per-worker
    before Ray starts."""
    from refmatch.batch.executors import executor_for

    return executor_for(
        opts.pop("executor"),
        address=opts.pop("address"),
        workers=opts.pop("workers"),
        gpus=opts.pop("gpus_per_worker"),
        device=device,
    )
