"""Password hashing: scrypt with a random salt, parameters kept in the hash.

Format: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can be
raised later without invalidating stored hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

N, R, P = 2**14, 8, 1
_DKLEN = 32
_MAXMEM = 2**26


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int | None = None) -> str:
    n = n or N
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=R, p=P, maxmem=_MAXMEM, dklen=_DKLEN)
    return f"scrypt${n}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches ``stored``; False for no or a malformed hash."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(want),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


_DUMMY: dict[int, str] = {}


def verify_nobody(password: str) -> None:
    """Spend the time a real check takes, for a user who does not exist (or
    may not log in now), so the answer's timing does not tell them apart."""
    stored = _DUMMY.get(N)
    if stored is None:
        stored = _DUMMY[N] = hash_password(base64.b64encode(os.urandom(12)).decode())
    verify_password(password, stored)
