import hashlib
import json

import pytest
from click.testing import CliRunner

from refmatch.app import users
from refmatch.app.users import User
from refmatch.cli import cli
from refmatch.domain.errors import Conflict, InvalidInput, NotFound
from refmatch.store import data_version


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """scrypt costs ~0.2 s a hash; the tests check behaviour, not cost."""
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


def test_password_is_hashed_and_authenticates(service):
    alice = users.add_user(service, "alice", "correct horse", "sales", "Alice A.")
    assert alice == User(alice.id, "alice", "sales", "Alice A.")
    stored = service.conn.execute("SELECT password_hash FROM users WHERE id = ?", (alice.id,)).fetchone()[0]
    assert stored != "correct horse" and "correct horse" not in stored
    assert stored.startswith("pbkdf2:sha256:1000$")
    assert users.authenticate(service, "alice", "correct horse") == alice
    assert users.authenticate(service, "ALICE", "correct horse") == alice  # usernames are case-insensitive
    assert users.authenticate(service, "alice", "wrong horse") is None
    assert users.authenticate(service, "alice", "") is None
    assert users.authenticate(service, "nobody", "correct horse") is None


def test_default_hash_is_scrypt(service, monkeypatch):
    monkeypatch.setattr(users, "PASSWORD_METHOD", "scrypt")
    users.add_user(service, "sam", "a long password", "cs")
    assert service.conn.execute("SELECT password_hash FROM users").fetchone()[0].startswith("scrypt:")
    assert users.authenticate(service, "sam", "a long password").username == "sam"


@pytest.mark.parametrize(
    "username, password, role, field",
    [
        ("alice", "short", "sales", "password"),
        ("alice", "long enough", "boss", "role"),
        ("", "long enough", "sales", "username"),
        ("has space", "long enough", "sales", "username"),
    ],
)
def test_add_user_validation(service, username, password, role, field):
    with pytest.raises(InvalidInput) as exc:
        users.add_user(service, username, password, role)
    assert [d["field"] for d in exc.value.details] == [field]
    assert password not in exc.value.message or field == "username"
    assert users.list_users(service) == []


def test_short_password_message_never_shows_it(service):
    with pytest.raises(InvalidInput) as exc:
        users.add_user(service, "alice", "hunter2", "sales")
    assert exc.value.message == "password: must be at least 8 characters"


def test_duplicate_username_conflicts(service):
    users.add_user(service, "alice", "long enough", "sales")
    with pytest.raises(Conflict, match="username 'Alice' is taken"):
        users.add_user(service, "Alice", "long enough", "cs")


def test_roles_and_lookups(service):
    made = {role: users.add_user(service, f"u_{role}", "long enough", role) for role in users.ROLES}
    assert [(u.is_manager, u.is_admin) for u in made.values()] == [
        (False, False),
        (False, False),
        (True, False),
        (True, True),
    ]
    assert users.list_users(service) == sorted(made.values(), key=lambda u: u.username)
    assert users.get_user(service, made["cs"].id) == made["cs"]
    assert users.get_user(service, 999) is None
    assert made["admin"].as_dict() == {
        "id": made["admin"].id,
        "username": "u_admin",
        "role": "admin",
        "display_name": None,
    }


def test_set_password(service):
    users.add_user(service, "alice", "first password", "sales")
    users.set_password(service, "alice", "second password")
    assert users.authenticate(service, "alice", "first password") is None
    assert users.authenticate(service, "alice", "second password").username == "alice"
    with pytest.raises(NotFound, match="unknown user: 'bob'"):
        users.set_password(service, "bob", "whatever long")
    with pytest.raises(InvalidInput):
        users.set_password(service, "alice", "short")


def test_token_shown_once_stored_hashed(service):
    alice = users.add_user(service, "alice", "long enough", "sales")
    token, token_id = users.create_token(service, "alice", "ci script")
    assert token.startswith("rmt_") and len(token) > 40
    row = service.conn.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    assert token not in [str(v) for v in row]
    assert hashlib.sha256(token.encode()).hexdigest() in row
    assert users.user_for_token(service, token) == alice
    assert users.user_for_token(service, token + "x") is None
    assert users.user_for_token(service, "") is None
    listed = users.list_tokens(service)
    assert listed == [
        {
            "id": token_id,
            "username": "alice",
            "name": "ci script",
            "created_at": listed[0]["created_at"],
            "last_used_at": listed[0]["last_used_at"],
            "revoked_at": None,
        }
    ]
    assert listed[0]["last_used_at"] is not None
    second, second_id = users.create_token(service, "alice", "ci script")
    assert second != token and second_id != token_id


def test_token_use_is_not_a_data_change(service):
    users.add_user(service, "alice", "long enough", "sales")
    token, _ = users.create_token(service, "alice", "ci")
    version = data_version(service.db)
    users.user_for_token(service, token)
    first = users.list_tokens(service)[0]["last_used_at"]
    users.user_for_token(service, token)  # within the minute: not written again
    assert users.list_tokens(service)[0]["last_used_at"] == first
    assert data_version(service.db) == version


def test_revoked_token_refused(service):
    users.add_user(service, "alice", "long enough", "sales")
    token, token_id = users.create_token(service, "alice", "ci")
    users.revoke_token(service, token_id)
    assert users.user_for_token(service, token) is None
    revoked_at = users.list_tokens(service, "alice")[0]["revoked_at"]
    assert revoked_at is not None
    users.revoke_token(service, token_id)  # again: nothing changes
    assert users.list_tokens(service, "alice")[0]["revoked_at"] == revoked_at
    with pytest.raises(NotFound, match="unknown token id: 99"):
        users.revoke_token(service, 99)


def test_token_errors(service):
    users.add_user(service, "alice", "long enough", "sales")
    with pytest.raises(NotFound, match="unknown user: 'bob'"):
        users.create_token(service, "bob", "ci")
    with pytest.raises(InvalidInput) as exc:
        users.create_token(service, "alice", "  ")
    assert exc.value.details == [{"field": "name", "message": "must not be empty"}]


def test_ensure_demo_users(service):
    created = users.ensure_demo_users(service)
    assert list(created) == ["sales", "cs", "manager", "admin"]
    for username, password in created.items():
        user = users.authenticate(service, username, password)
        assert user is not None and user.role == users.DEMO_USERS[username]
        assert len(password) == 12  # secrets.token_urlsafe(9)
    assert users.ensure_demo_users(service) == {}  # existing users are left alone
    assert users.authenticate(service, "admin", created["admin"]) is not None


def test_ensure_demo_users_creates_only_missing(service):
    users.add_user(service, "manager", "my own password", "reference_manager")
    created = users.ensure_demo_users(service)
    assert list(created) == ["sales", "cs", "admin"]
    assert users.authenticate(service, "manager", "my own password") is not None


# -- CLI --------------------------------------------------------------------------
@pytest.fixture
def run(tmp_path):
    base = ["--db", str(tmp_path / "r.db"), "--index-dir", str(tmp_path / "idx")]

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, [*args, *base], input=input)

    assert invoke("init").exit_code == 0  # only init, import and demo create a database
    invoke.db_path = tmp_path / "r.db"
    return invoke


@pytest.fixture
def cli_db(run):
    from refmatch.app.service import Service
    from refmatch.config import load_settings

    handles = []

    def opened():
        handles.append(Service(load_settings({"db": str(run.db_path)}, env={})))
        return handles[-1]

    yield opened
    for h in handles:
        h.close()


def test_cli_user_add_and_list(run, cli_db):
    out = run(
        "user",
        "add",
        "alice",
        "--role",
        "sales",
        "--display-name",
        "Alice A.",
        "--password-stdin",
        input="s3cret pass\n",
    )
    assert out.exit_code == 0, out.output
    assert out.output == "user alice created (sales)\n"
    out = run("user", "add", "mia", "--role", "reference_manager", "--password-stdin", input="another pass\n")
    assert out.exit_code == 0
    out = run("user", "list")
    assert out.output.splitlines() == [
        "   1  alice                    sales              Alice A.",
        "   2  mia                      reference_manager",
    ]
    out = run("user", "list", "--format", "json")
    assert [u["username"] for u in json.loads(out.output)] == ["alice", "mia"]
    service = cli_db()
    assert users.authenticate(service, "alice", "s3cret pass").role == "sales"


def test_cli_user_add_prompts_without_echo(run, cli_db):
    out = run("user", "add", "alice", "--role", "cs", input="s3cret pass\ns3cret pass\n")
    assert out.exit_code == 0, out.output
    assert "s3cret pass" not in out.output
    assert "Password: \nRepeat for confirmation: \nuser alice created (cs)\n" == out.output
    assert users.authenticate(cli_db(), "alice", "s3cret pass") is not None


def test_cli_user_errors(run):
    assert run("user", "add", "alice", "--role", "sales", "--password-stdin", input="long enough\n").exit_code == 0
    out = run("user", "add", "alice", "--role", "sales", "--password-stdin", input="long enough\n")
    assert (out.exit_code, out.output) == (1, "Error: username 'alice' is taken\n")
    out = run("user", "add", "bob", "--role", "sales", "--password-stdin", input="short\n")
    assert (out.exit_code, out.output) == (2, "Error: password: must be at least 8 characters\n")
    out = run("user", "add", "bob", "--role", "boss", "--password-stdin", input="long enough\n")
    assert out.exit_code == 2 and "'boss' is not one of" in out.output


def test_cli_set_password(run, cli_db):
    run("user", "add", "alice", "--role", "sales", "--password-stdin", input="long enough\n")
    out = run("user", "set-password", "alice", "--password-stdin", input="even longer one\n")
    assert (out.exit_code, out.output) == (
        0,
        "password of alice changed; every session signed in with the old one has ended\n",
    )
    assert users.authenticate(cli_db(), "alice", "even longer one") is not None


def test_cli_token_create_list_revoke(run, cli_db):
    run("user", "add", "alice", "--role", "sales", "--password-stdin", input="long enough\n")
    out = run("token", "create", "alice", "--name", "ci")
    assert out.exit_code == 0, out.output
    token = out.stdout.strip()
    assert token.startswith("rmt_") and "\n" not in token
    assert out.stderr == "token 1 (ci) created for alice: store it now, it is not shown again\n"
    service = cli_db()
    assert users.user_for_token(service, token).username == "alice"
    listed = run("token", "list")
    assert listed.exit_code == 0 and token not in listed.output
    assert listed.output.startswith("   1  alice                    ci                       created ")
    out = run("token", "revoke", "1")
    assert (out.exit_code, out.output) == (0, "token 1 revoked\n")
    assert users.user_for_token(service, token) is None
    assert "revoked 20" in run("token", "list", "alice").output
    out = run("token", "revoke", "7")
    assert (out.exit_code, out.output) == (1, "Error: unknown token id: 7\n")
    out = run("token", "create", "bob", "--name", "ci")
    assert (out.exit_code, out.output) == (1, "Error: unknown user: 'bob'\n")


def test_demo_prints_the_users_it_creates(run, monkeypatch):
    from refmatch.app import demo

    monkeypatch.setattr(demo, "load", lambda service, **kwargs: {})
    monkeypatch.setattr(users.secrets, "token_urlsafe", lambda n: f"pw-{n}-long")
    out = run("demo", "-q")
    assert out.exit_code == 0, out.output
    assert (
        "demo users (role: username / password): sales: sales / pw-9-long, cs: cs / pw-9-long, "
        "reference_manager: manager / pw-9-long, admin: admin / pw-9-long\n" in out.output
    )
    again = run("demo", "-q")
    assert again.exit_code == 0 and "demo users" not in again.output


def test_hashes_written_by_earlier_releases_still_verify():
    """Earlier releases hashed with werkzeug; its stored format is the one refmatch.app.passwords reads."""
    from werkzeug.security import generate_password_hash

    from refmatch.app import passwords

    for method in ("pbkdf2:sha256:1000", "scrypt:1024:8:1"):
        stored = generate_password_hash("correct horse", method=method)
        assert passwords.verify_password(stored, "correct horse")
        assert not passwords.verify_password(stored, "correct horsE")
    assert not passwords.verify_password("not a hash", "anything")
