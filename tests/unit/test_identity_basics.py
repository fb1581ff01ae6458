"""Password hashing and role implication."""

from __future__ import annotations

from kaon.identity import roles
from kaon.identity.passwords import hash_password, verify_password


def test_password_hash_verifies_and_is_salted() -> None:
    h1, h2 = hash_password("s3cret", n=2**10), hash_password("s3cret", n=2**10)
    assert h1 != h2
    assert h1.startswith("scrypt$1024$")
    assert verify_password("s3cret", h1)
    assert not verify_password("s3cret!", h1)
    assert "s3cret" not in h1


def test_verify_refuses_missing_or_malformed_hashes() -> None:
    for stored in (None, "", "plain", "scrypt$x$8$1$aa$bb", "bcrypt$1$2$3$4$5"):
        assert not verify_password("pw", stored)


def test_default_role_implication() -> None:
    assert roles.effective(["admin"]) == {"admin", "member", "reader"}
    assert roles.effective(["manager"]) == {"manager", "member", "reader"}
    assert roles.effective(["member"]) == {"member", "reader"}
    assert roles.effective(["reader"]) == {"reader"}
    assert roles.effective(["service"]) == {"service"}
    assert roles.effective(["Member", "custom"]) == {"member", "reader", "custom"}
    assert roles.effective([]) == frozenset()
    assert ("admin", "member") in roles.inferences()
