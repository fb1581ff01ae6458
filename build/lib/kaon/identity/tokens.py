"""Stateless signed tokens and their validation.

A token is ``k1.<payload>.<mac>``: the payload is compact JSON, base64url
without padding; the MAC is HMAC-SHA256 of ``k1.<payload>`` with the node's
secret key. The payload carries everything a consumer needs (user, scope,
effective roles, names, issue and expiry times, an audit id), so validating
a token is one HMAC, one expiry comparison and a look into the in-memory
revocation rules: no database read on the request path.

The payload is signed, not encrypted: it holds names and ids, never a
secret, the same information Keystone hands back on validation anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Engine, delete, insert, select

from kaon.api.context import Context
from kaon.db import identity_tables as t
from kaon.db.engine import read_txn, write_txn
from kaon.identity.errors import Unauthenticated

PREFIX = "k1"
KEY_FILE = "identity.key"

Ref = tuple[str, str]  # (id, name)


@dataclass(frozen=True)
class TokenData:
    user: Ref
    user_domain: Ref
    issued_at: float
    expires_at: float
    audit_id: str
    methods: tuple[str, ...] = ("password",)
    project: Ref | None = None
    project_domain: Ref | None = None
    domain: Ref | None = None  # domain scope
    roles: tuple[Ref, ...] = ()

    @property
    def user_id(self) -> str:
        return self.user[0]

    @property
    def project_id(self) -> str | None:
        return self.project[0] if self.project else None

    @property
    def role_names(self) -> frozenset[str]:
        """Lower-cased, as oslo.policy compares roles."""
        return frozenset(name.lower() for _id, name in self.roles)

    def to_context(self, request_id: str) -> Context:
        return Context(
            user_id=self.user[0],
            project_id=self.project[0] if self.project else "",
            roles=self.role_names,
            request_id=request_id,
            user_name=self.user[1],
            project_name=self.project[1] if self.project else "",
        )


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_audit_id() -> str:
    return _b64e(secrets.token_bytes(16))


class TokenSigner:
    """Encodes and decodes tokens with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("identity token key must be at least 16 bytes")
        self._key = key

    def _mac(self, signed: bytes) -> str:
        return _b64e(hmac.new(self._key, signed, hashlib.sha256).digest())

    def encode(self, data: TokenData) -> str:
        payload = {
            "u": data.user,
            "ud": data.user_domain,
            "i": data.issued_at,
            "e": data.expires_at,
            "a": data.audit_id,
            "m": data.methods,
            "p": data.project,
            "pd": data.project_domain,
            "d": data.domain,
            "r": data.roles,
        }
        signed = f"{PREFIX}.{_b64e(orjson.dumps(payload))}"
        return f"{signed}.{self._mac(signed.encode())}"

    def decode(self, token: str) -> TokenData:
        """The token's data if its signature is good (expiry is not checked)."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise Unauthenticated()
        signed = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(signed.encode()), parts[2]):
            raise Unauthenticated()
        try:
            p = orjson.loads(_b64d(parts[1]))
            return TokenData(
                user=_ref(p["u"]),
                user_domain=_ref(p["ud"]),
                issued_at=float(p["i"]),
                expires_at=float(p["e"]),
                audit_id=str(p["a"]),
                methods=tuple(p["m"]),
                project=_opt_ref(p.get("p")),
                project_domain=_opt_ref(p.get("pd")),
                domain=_opt_ref(p.get("d")),
                roles=tuple(_ref(r) for r in p.get("r") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            # Only a holder of the key can sign; a payload that does not
            # parse means a key shared with something else. Refuse it.
            raise Unauthenticated() from exc


def _ref(value: object) -> Ref:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("bad reference in token")
    return (str(value[0]), str(value[1]))


def _opt_ref(value: object) -> Ref | None:
    return None if value is None else _ref(value)


@dataclass
class Revocations:
    """Revocation rules, in memory, written through to the database.

    One process keeps the authoritative copy in memory; :meth:`load` reads
    back the rules still in force after a restart (or, in a multi-worker
    deployment, whenever the caller chooses to refresh).
    """

    audit_ids: dict[str, float] = field(default_factory=dict)
    users: dict[str, float] = field(default_factory=dict)
    projects: dict[str, float] = field(default_factory=dict)

    def _table(self, kind: str) -> dict[str, float]:
        return {"audit": self.audit_ids, "user": self.users, "project": self.projects}[kind]

    def matches(self, data: TokenData) -> bool:
        if data.audit_id in self.audit_ids:
            return True
        cut = self.users.get(data.user[0])
        if cut is not None and data.issued_at <= cut:
            return True
        if data.project is not None:
            cut = self.projects.get(data.project[0])
            if cut is not None and data.issued_at <= cut:
                return True
        return False

    def add(self, kind: str, value: str, revoked_at: float) -> None:
        table = self._table(kind)
        table[value] = max(revoked_at, table.get(value, 0.0))

    def load(self, engine: Engine) -> None:
        now = time.time()
        with write_txn(engine) as conn:
            conn.execute(delete(t.revocations).where(t.revocations.c.expires_at < now))
        with read_txn(engine) as conn:
            rows = conn.execute(select(t.revocations)).all()
        for row in rows:
            self.add(row.kind, row.value, row.revoked_at)


class TokenValidator:
    """Issues and validates tokens; the object the auth middleware calls."""

    def __init__(self, signer: TokenSigner, ttl: int, revocations: Revocations | None = None) -> None:
        self.signer = signer
        self.ttl = ttl
        self.revocations = revocations or Revocations()

    def issue(self, data: TokenData) -> str:
        return self.signer.encode(data)

    def validate(self, token: str, *, now: float | None = None) -> TokenData:
        """The token's data; :class:`Unauthenticated` if bad, expired or revoked."""
        data = self.signer.decode(token)
        if data.expires_at <= (time.time() if now is None else now):
            raise Unauthenticated()
        if self.revocations.matches(data):
            raise Unauthenticated()
        return data

    def revoke(self, engine: Engine, kind: str, value: str) -> None:
        """Revoke every token matching (kind, value) issued up to now."""
        now = time.time()
        row = {"kind": kind, "value": value, "revoked_at": now, "expires_at": now + self.ttl}
        with write_txn(engine) as c:
            c.execute(insert(t.revocations).values(**row))
        self.revocations.add(kind, value, now)


def load_or_create_key(state_dir: Path) -> bytes:
    """The key in ``state_dir/identity.key``, made (mode 0600) if absent."""
    path = Path(state_dir) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: link fails if
    # another process won the race, and nobody ever reads a half-written key.
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_bytes(32).hex() + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
