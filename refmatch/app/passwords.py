"""Password hashes: salted scrypt from the standard library (``hashlib.scrypt``).

Stored as ``method$salt$hex`` (``scrypt:N:r:p`` or ``pbkdf2:HASH:ITERATIONS``), the format
werkzeug writes, so hashes made by earlier releases (which hashed with werkzeug) still
verify; the application layer no longer imports the web framework's helpers to do it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

DEFAULT_METHOD = "scrypt:32768:8:1"
_SALT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _derive(method: str, salt: str, password: str) -> tuple[str, str]:
    """(hex digest, the method in full) for ``method`` with its parameters, or its defaults."""
    name, *args = method.split(":")
    if name == "scrypt":
        n, r, p = map(int, args) if args else (2**15, 8, 1)
        digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p)
        return digest.hex(), f"scrypt:{n}:{r}:{p}"
    if name == "pbkdf2":
        hash_name = args[0] if args else "sha256"
        iterations = int(args[1]) if len(args) > 1 else 1_000_000
        digest = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt.encode(), iterations)
        return digest.hex(), f"pbkdf2:{hash_name}:{iterations}"
    raise ValueError(f"unknown password hash method {name!r}")


def hash_password(password: str, method: str = DEFAULT_METHOD) -> str:
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    digest, full = _derive(method, salt, password)
    return f"{full}${salt}${digest}"


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant time in the digest)."""
    try:
        method, salt, digest = stored.split("$", 2)
        return hmac.compare_digest(_derive(method, salt, password)[0], digest)
    except ValueError:
        return False
