"""Credentials at rest: round trip, wrong keys, rotation, tampering, nothing in repr."""

from __future__ import annotations

import pickle

import pytest

from app.security.crypto import (
    Credential,
    CredentialCipher,
    CredentialError,
    generate_key,
    parse_keys,
)

SECRET = "venue-api-secret-7f3a9c"


def test_round_trip_returns_the_plaintext() -> None:
    # Arrange
    cipher = CredentialCipher([generate_key()])

    # Act
    token = cipher.encrypt(SECRET)

    # Assert
    assert SECRET not in token
    assert cipher.decrypt(token).reveal() == SECRET


def test_each_encryption_differs() -> None:
    # Arrange
    cipher = CredentialCipher([generate_key()])

    # Act
    tokens = {cipher.encrypt(SECRET) for _ in range(3)}

    # Assert: a random IV each time, so equal secrets do not show as equal tokens
    assert len(tokens) == 3


def test_wrong_key_fails() -> None:
    # Arrange
    token = CredentialCipher([generate_key()]).encrypt(SECRET)
    other = CredentialCipher([generate_key()])

    # Act / Assert
    with pytest.raises(CredentialError, match="not readable with the configured keys"):
        other.decrypt(token)


def test_rotation_new_key_first_old_keys_still_decrypt() -> None:
    # Arrange
    old_key, new_key = generate_key(), generate_key()
    old_token = CredentialCipher([old_key]).encrypt(SECRET)
    both = CredentialCipher.from_setting(f"{new_key}, {old_key}")

    # Act
    rotated = both.rotate(old_token)

    # Assert: old tokens still open; rotated ones open with the new key alone
    assert both.decrypt(old_token).reveal() == SECRET
    assert CredentialCipher([new_key]).decrypt(rotated).reveal() == SECRET
    with pytest.raises(CredentialError):
        CredentialCipher([old_key]).decrypt(rotated)
    # New encryptions use the first key
    assert CredentialCipher([new_key]).decrypt(both.encrypt(SECRET)).reveal() == SECRET


@pytest.mark.parametrize("position", [0, 10, 40, -5])
def test_tampering_is_detected(position: int) -> None:
    # Arrange
    cipher = CredentialCipher([generate_key()])
    token = cipher.encrypt(SECRET)
    flipped = "A" if token[position] != "A" else "B"
    index = position % len(token)
    tampered = token[:index] + flipped + token[index + 1 :]

    # Act / Assert
    with pytest.raises(CredentialError):
        cipher.decrypt(tampered)


@pytest.mark.parametrize("token", ["", "not a token", "é"])
def test_garbage_tokens_fail_cleanly(token: str) -> None:
    # Arrange
    cipher = CredentialCipher([generate_key()])

    # Act / Assert
    with pytest.raises(CredentialError):
        cipher.decrypt(token)
    with pytest.raises(CredentialError):
        cipher.rotate(token)


def test_plaintext_never_appears_in_repr_or_str() -> None:
    # Arrange
    key = generate_key()
    cipher = CredentialCipher([key])
    credential = cipher.decrypt(cipher.encrypt(SECRET))

    # Act
    shown = [repr(credential), str(credential), f"{credential}", f"{credential!r}", repr(cipher)]
    shown += [repr([credential]), repr({"secret": credential})]

    # Assert
    assert all(SECRET not in text and key not in text for text in shown), shown
    assert credential == Credential(SECRET)
    with pytest.raises(TypeError):
        pickle.dumps(credential)


@pytest.mark.parametrize("keys", [[], ["too-short"], ["x" * 44]])
def test_bad_keys_are_refused_without_echoing_them(keys: list[str]) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="credentials key") as info:
        CredentialCipher(keys)
    assert all(key not in str(info.value) for key in keys)


def test_parse_keys_splits_and_trims() -> None:
    # Act
    keys = parse_keys(" a , b,,c ")

    # Assert
    assert keys == ["a", "b", "c"]
