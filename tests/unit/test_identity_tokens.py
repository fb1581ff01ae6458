"""Tokens: signing, tampering, expiry, revocation, the key file."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from kaon.db import identity_tables
from kaon.db.engine import make_engine
from kaon.db.meta import metadata
from kaon.identity.errors import Unauthenticated
from kaon.identity.tokens import (
    Revocations,
    TokenData,
    TokenSigner,
    TokenValidator,
    load_or_create_key,
    new_audit_id,
)

KEY = b"k" * 32


def data(**changes: object) -> TokenData:
    now = time.time()
    base: dict[str, object] = {
        "user": ("u1", "demo"),
        "user_domain": ("default", "Default"),
        "issued_at": now,
        "expires_at": now + 3600,
        "audit_id": new_audit_id(),
        "project": ("p1", "demo"),
        "project_domain": ("default", "Default"),
        "roles": (("r1", "member"), ("r2", "reader")),
    }
    base.update(changes)
    return TokenData(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    signer = TokenSigner(KEY)
    original = data(methods=("password", "token"))
    assert signer.decode(signer.encode(original)) == original


def test_domain_scoped_and_unscoped_round_trip() -> None:
    signer = TokenSigner(KEY)
    for d in (
        data(project=None, project_domain=None, domain=("default", "Default")),
        data(project=None, project_domain=None, roles=()),
    ):
        assert signer.decode(signer.encode(d)) == d


def test_context_from_token() -> None:
    ctx = data().to_context("req-1")
    assert (ctx.user_id, ctx.project_id, ctx.user_name, ctx.project_name) == ("u1", "p1", "demo", "demo")
    assert ctx.roles == frozenset({"member", "reader"})
    assert ctx.request_id == "req-1"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda tok: tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"),  # signature
        lambda tok: tok.replace("k1.", "k1.x", 1),  # payload
        lambda tok: "k2" + tok[2:],  # version
        lambda tok: tok.rsplit(".", 1)[0],  # no signature
        lambda tok: "garbage",
        lambda tok: "",
    ],
)
def test_tampered_tokens_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = TokenSigner(KEY)
    with pytest.raises(Unauthenticated):
        signer.decode(mangle(signer.encode(data())))


def test_other_key_is_refused() -> None:
    token = TokenSigner(KEY).encode(data())
    with pytest.raises(Unauthenticated):
        TokenSigner(b"x" * 32).decode(token)


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        TokenSigner(b"short")


def test_expiry() -> None:
    validator = TokenValidator(TokenSigner(KEY), 3600)
    d = data()
    token = validator.issue(d)
    assert validator.validate(token) == d
    assert validator.validate(token, now=d.expires_at - 1) == d
    with pytest.raises(Unauthenticated):
        validator.validate(token, now=d.expires_at)
    with pytest.raises(Unauthenticated):
        validator.validate(validator.issue(data(expires_at=time.time() - 1)))


def test_revocation_rules() -> None:
    rev = Revocations()
    d = data()
    assert not rev.matches(d)
    rev.add("audit", d.audit_id, time.time())
    assert rev.matches(d)
    assert not rev.matches(data())

    rev = Revocations()
    rev.add("user", "u1", d.issued_at)
    assert rev.matches(d)  # issued at the revocation instant: revoked
    assert not rev.matches(data(issued_at=d.issued_at + 1))  # issued after: valid
    assert not rev.matches(data(user=("u2", "x")))

    rev = Revocations()
    rev.add("project", "p1", d.issued_at)
    assert rev.matches(d)
    assert not rev.matches(data(project=("p2", "alt")))
    assert not rev.matches(data(project=None, project_domain=None))


def test_revocations_survive_a_restart(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    metadata.create_all(engine, tables=list(identity_tables.TABLES))
    validator = TokenValidator(TokenSigner(KEY), 3600)
    d = data()
    token = validator.issue(d)
    validator.revoke(engine, "audit", d.audit_id)
    with pytest.raises(Unauthenticated):
        validator.validate(token)

    fresh = TokenValidator(TokenSigner(KEY), 3600)
    assert fresh.validate(token) == d  # nothing loaded yet
    fresh.revocations.load(engine)
    with pytest.raises(Unauthenticated):
        fresh.validate(token)


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key = load_or_create_key(state)
    path = state / "identity.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(state) == key
    assert [p.name for p in state.iterdir()] == ["identity.key"]  # no temporary left
