"""The ``refmatch`` command: a click group over the application layer, one module per command group.

Each command module imports only click and the vocabulary at start-up; what a command
needs (the service, numpy, FAISS, the model) is imported when it runs.
"""

from __future__ import annotations

import click

from refmatch.cli import batch, core, forecast, notify, risk, serve, users, weights


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="refmatch")
def cli() -> None:
    """refmatch: match customers to peer references who are further along the same journey.

    Typical flow: init -> import accounts / needs / advocates -> index build -> match.
    """


for command in (
    core.init,
    core.import_,
    core.index,
    core.match,
    core.demo,
    risk.risk,
    weights.weights,
    forecast.forecast,
    batch.batch,
    batch.runs,
    users.user,
    users.token,
    notify.notify,
    notify.requests,
    serve.serve,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="refmatch")
