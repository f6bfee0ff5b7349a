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
    click.echo(f"password of {username} changed; every session signed in with the old one has ended")


@user.command("sign-out")
@click.argument("username")
@common
def user_sign_out(service: Service, username: str) -> None:
    """End every web session of USERNAME at once (a lost laptop, a copied cookie); API tokens stay."""
    from refmatch.app import users

    done = users.end_sessions(service, username)
    click.echo(f"every session of {done.username} has ended")


@user.command("disable")
@click.argument("username")
@common
def user_disable(service: Service, username: str) -> None:
    """Stop USERNAME signing in or using its API tokens, and end its sessions (enable undoes it)."""
    from refmatch.app import users

    changed = users.set_disabled(service, username, True)
    click.echo(f"{username} disabled: its sessions have ended" if changed else f"{username} was already disabled")


@user.command("enable")
@click.argument("username")
@common
def user_enable(service: Service, username: str) -> None:
    """Let a disabled USERNAME sign in and use its API tokens again."""
    from refmatch.app import users

    changed = users.set_disabled(service, username, False)
    click.echo(f"{username} enabled" if changed else f"{username} was not disabled")


@user.command("remove")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common
def user_remove(service: Service, username: str, yes: bool) -> None:
    """Delete USERNAME, its API tokens and its sessions. Its requests and their history stay."""
    from refmatch.app import users

    if users.get_user_by_name(service, username) is None:
        raise NotFound(f"unknown user: {username!r}")
    if not yes:
        click.confirm(f"Remove {username} for good (disable keeps the user)?", abort=True)
    removed = users.remove_user(service, username)
    click.echo(f"user {removed.username} removed")


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
        click.echo(json.dumps([{**u.as_dict(), "disabled": u.disabled} for u in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no users: add one with 'refmatch user add USERNAME --role ROLE'")
    for u in found:
        disabled = "  (disabled)" if u.disabled else ""
        click.echo(f"{u.id:>4}  {u.username:<24} {u.role:<18} {u.display_name or ''}".rstrip() + disabled)


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
