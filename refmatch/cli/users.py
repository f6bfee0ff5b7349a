"""``refmatch user ...`` and ``refmatch token ...``: a click shell over ``refmatch.app.users``.

Registered by ``refmatch.cli``. Passwords are
prompted without echo, or read from stdin with --password-stdin; they are never printed.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from refmatch.cli.common import common
from refmatch.domain.errors import NotFound
from refmatch.domain.vocabulary import ROLES

if TYPE_CHECKING:
    from refmatch.app.service import Service


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("user")
def user() -> None:
    """Manage the users who sign in to the web app and the API."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the user may do.")
@click.option("--display-name", help="A name to show instead of the username.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@common
def user_add(service: Service, username: str, role: str, display_name: str | None, password_stdin: bool) -> None:
    """Create USERNAME with a ROLE (sales, cs, reference_manager, admin) and a password (8+ characters)."""
    from refmatch.app import users

    created = users.add_user(service, username, _password(password_stdin), role, display_name)
    click.echo(f"user {created.username} created ({created.role})")


@user.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@common
def user_set_password(service: Service, username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME."""
    from refmatch.app import users

    users.set_password(service, username, _password(password_stdin))
    click.echo(f"password of {username} changed")


@user.command("unlock")
@click.argument("username")
@common
def user_unlock(service: Service, username: str) -> None:
    """Clear USERNAME's failed sign-ins, so it may sign in again at once (a locked address still waits)."""
    from refmatch.app import users

    username = username.strip()
    cleared = users.clear_login_failures(service, username)
    if cleared:
        plural = "" if cleared == 1 else "s"
        click.echo(f"{username} unlocked: cleared {cleared} failed sign-in{plural}")
    elif users.get_user_by_name(service, username) is None:
        raise NotFound(f"unknown user: {username!r} (and no failed sign-ins recorded for it)")
    else:
        click.echo(f"{username} has no failed sign-ins: nothing to unlock")


@user.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def user_list(service: Service, fmt: str) -> None:
    """List the users and their roles."""
    from refmatch.app import users

    found = users.list_users(service)
    if fmt == "json":
        click.echo(json.dumps([u.as_dict() for u in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no users: add one with 'refmatch user add USERNAME --role ROLE'")
    for u in found:
        click.echo(f"{u.id:>4}  {u.username:<24} {u.role:<18} {u.display_name or ''}".rstrip())


@click.group("token")
def token() -> None:
    """Manage API bearer tokens (stored hashed; each is shown once, when created)."""


@token.command("create")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for (e.g. the script or service using it).")
@common
def token_create(service: Service, username: str, name: str) -> None:
    """Create an API token for USERNAME and print it: it is shown this once and never again."""
    from refmatch.app import users

    plaintext, token_id = users.create_token(service, username, name)
    click.echo(plaintext)
    click.echo(f"token {token_id} ({name}) created for {username}: store it now, it is not shown again", err=True)


@token.command("list")
@click.argument("username", required=False)
@common
def token_list(service: Service, username: str | None) -> None:
    """List API tokens (never their values), of USERNAME or of everyone."""
    from refmatch.app import users

    found = users.list_tokens(service, username)
    if not found:
        click.echo("no tokens")
    for t in found:
        state = f"revoked {t['revoked_at']}" if t["revoked_at"] else f"last used {t['last_used_at'] or 'never'}"
        click.echo(f"{t['id']:>4}  {t['username']:<24} {t['name']:<24} created {t['created_at']}  {state}")


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@common
def token_revoke(service: Service, token_id: int) -> None:
    """Revoke the API token with this ID (see 'refmatch token list'); it stops working at once."""
    from refmatch.app import users

    users.revoke_token(service, token_id)
    click.echo(f"token {token_id} revoked")
