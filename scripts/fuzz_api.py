#!/usr/bin/env python3
"""Schema-driven fuzzing of /api/v1: schemathesis generates requests from the served OpenAPI document.

    python scripts/fuzz_api.py                    # CI's run: every operation, each role, bounded
    python scripts/fuzz_api.py --examples 200 --seed 7

Builds the tests' small hand-built world (the fake encoder: no model to load), signs in a user
of each role with an API token, loads the document from the app itself (in process, over WSGI),
and for every operation sends generated requests, valid ones and deliberately invalid ones
(wrong types, out-of-range numbers, odd strings, missing fields), as each role. Every answer is
checked against the document: no 5xx, a documented status code, a body and content type that
conform to it. Prints the requests sent and the failures; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLES = {"sales": "sales", "manager": "reference_manager", "admin": "admin"}


def world(folder: Path):
    """The tests' world (tests/conftest.py build_world) in ``folder``, with a user and token per role."""
    from refmatch.app import users
    from refmatch.app.service import Service
    from refmatch.config import load_settings
    from refmatch.embed.fake import FakeEncoder
    from tests.conftest import build_world

    settings = load_settings({"db": str(folder / "fuzz.db"), "index_dir": str(folder / "indexes")}, env={})
    service = build_world(Service(settings, encoder=FakeEncoder()), folder)
    users.PASSWORD_METHOD = "pbkdf2:sha256:1000"  # hashing cost is not what is tested here
    tokens = {}
    for username, role in ROLES.items():
        users.add_user(service, username, "a long enough password", role)
        tokens[username], _ = users.create_token(service, username, "fuzz")
    return service, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=50, help="generated requests per operation, mode and role")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed (the same seed sends the same requests)")
    parser.add_argument("--seconds", type=float, default=240, help="start no new operation after this long")
    args = parser.parse_args()

    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.core.failures import FailureGroup

    from refmatch.web import create_app

    started = time.perf_counter()
    sent: Counter[str] = Counter()
    skipped = 0  # operation runs not started: the time budget was spent
    failures: list[str] = []
    with tempfile.TemporaryDirectory(
        prefix="refmatch-fuzz-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
    ) as tmp:
        service, tokens = world(Path(tmp))
        app = create_app(
            {"SECRET_KEY": "fuzz", "REFMATCH_SETTINGS": service.settings, "REFMATCH_ENCODER": service.encoder}
        )
        auth = {"Authorization": f"Bearer {tokens['admin']}"}
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth)
        operations = [result.ok() for result in schema.get_all_operations()]
        for username, token in tokens.items():
            # identity: the WSGI transport hands the body over undecoded, and gzip would read as garbage
            # (compression is tested in tests/test_web_app.py)
            headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    if time.perf_counter() - started > args.seconds:
                        skipped += 1
                        continue
                    label = f"{operation.label} as {username} ({mode.value})"
                    run = _runner(operation.as_strategy(generation_mode=mode), label, headers, args, sent, failures)
                    try:
                        run()
                    except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
                        pass
                    except (AssertionError, FailureGroup):  # recorded by the runner; on with the next operation
                        pass
        service.close()
    seconds = time.perf_counter() - started
    print(f"fuzz: {sum(sent.values())} requests to {len(operations)} operations as {len(tokens)} roles "
          f"in {seconds:.0f} s; {len(failures)} failures")  # fmt: skip
    if skipped:
        print(f"fuzz: {skipped} operation runs not started: --seconds {args.seconds:.0f} was spent")
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


def _runner(strategy, label: str, headers: dict[str, str], args: argparse.Namespace, sent: Counter, failures: list):
    """A hypothesis test that sends ``args.examples`` requests drawn from ``strategy`` and checks each answer."""
    import hypothesis
    from hypothesis import HealthCheck, settings
    from schemathesis.core.failures import FailureGroup

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.seed(args.seed)
    @hypothesis.given(case=strategy)
    def run(case) -> None:
        sent[label] += 1
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:  # schemathesis raises its failures as a group: a line each
            found = getattr(exc, "exceptions", None) or [exc]
            what = "; ".join(str(getattr(f, "title", "") or f).strip().splitlines()[0] for f in found)
            failures.append(f"{label}: [{response.status_code}] {what}\n    {case.as_curl_command(headers=headers)}")
            raise

    return run


def _checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


CHECKS = _checks()

if __name__ == "__main__":
    sys.exit(main())
