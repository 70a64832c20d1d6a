"""copytrade rotate-credentials: stored exchange credentials re-encrypted under the new key,
all or nothing."""

from __future__ import annotations

import json

import asyncpg
import pytest

from app.security.crypto import CredentialCipher, CredentialError, generate_key
from tests.integration.cli_runner import cli_env, run_cli

CREDENTIALS = {"api_key": "k-123", "api_secret": "s-456"}


async def _venue_leader(db: asyncpg.Connection, name: str, token: str) -> object:
    return await db.fetchval(
        "INSERT INTO leader (id, name, feed_kind, feed_config, feed_secret) "
        "VALUES (gen_random_uuid(), $1, 'bybit', '{}'::jsonb, $2) RETURNING id",
        name,
        token,
    )


async def test_rotation_re_encrypts_every_credential_under_the_new_key(
    db: asyncpg.Connection,
) -> None:
    # Arrange: two leaders' credentials under the old key.
    old, new = generate_key(), generate_key()
    plaintext = json.dumps(CREDENTIALS)
    for name in ("a", "b"):
        await _venue_leader(db, name, CredentialCipher([old]).encrypt(plaintext))

    # Act
    result = await run_cli(
        "rotate-credentials", env=cli_env(COPYTRADE_CREDENTIALS_KEY=f"{new},{old}")
    )

    # Assert: readable with the new key alone, same plaintext; the secret never printed.
    assert result.code == 0, result.stderr
    assert "2 leader" in result.stdout
    tokens = [r["feed_secret"] for r in await db.fetch("SELECT feed_secret FROM leader")]
    assert [CredentialCipher([new]).decrypt(t).reveal() for t in tokens] == [plaintext] * 2
    assert "s-456" not in result.stdout + result.stderr


async def test_an_unreadable_credential_changes_nothing(db: asyncpg.Connection) -> None:
    # Arrange: one credential under the old key, one under a key nobody configured.
    old, new, lost = generate_key(), generate_key(), generate_key()
    readable = CredentialCipher([old]).encrypt("{}")
    await _venue_leader(db, "a", readable)
    stray = await _venue_leader(db, "b", CredentialCipher([lost]).encrypt("{}"))

    # Act
    result = await run_cli(
        "rotate-credentials", env=cli_env(COPYTRADE_CREDENTIALS_KEY=f"{new},{old}")
    )

    # Assert: a readable error naming the leader; the other row still under the old key.
    assert result.code == 1
    assert str(stray) in result.stderr
    tokens = sorted(r["feed_secret"] for r in await db.fetch("SELECT feed_secret FROM leader"))
    assert readable in tokens
    with pytest.raises(CredentialError):
        CredentialCipher([new]).decrypt(readable)
