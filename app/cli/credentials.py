"""Key rotation for stored exchange credentials: re-encrypt them under the newest key."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from uuid import UUID

from app.cli.common import fail, out
from app.cli.service import load_settings

if TYPE_CHECKING:
    from app.security.crypto import CredentialCipher


def rotate_credentials() -> None:
    """Re-encrypt every stored exchange credential under the first COPYTRADE_CREDENTIALS_KEY.

    Rotation: put a new key first (COPYTRADE_CREDENTIALS_KEY=new,old), restart the service,
    run this, then drop the old key. All rows change in one transaction, or none does.
    """
    from app.security.crypto import CredentialCipher

    settings = load_settings()
    if settings.credentials_key is None:
        fail("COPYTRADE_CREDENTIALS_KEY is not set", code=2)
    cipher = CredentialCipher.from_setting(settings.credentials_key.get_secret_value())
    try:
        count = asyncio.run(_rotate(settings.database_url, cipher))
    except _Unreadable as exc:
        fail(f"leader {exc.leader_id}: its credentials open with none of the keys; nothing changed")
    out.print(f"re-encrypted the credentials of {count} leader(s) under the first key")


class _Unreadable(Exception):
    def __init__(self, leader_id: UUID) -> None:
        super().__init__(str(leader_id))
        self.leader_id = leader_id


async def _rotate(database_url: str, cipher: CredentialCipher) -> int:
    from app.db.repositories.accounts import LeaderRepository
    from app.db.session import UnitOfWork, make_engine, make_sessionmaker
    from app.security.crypto import CredentialError

    engine = make_engine(database_url, 1)
    try:
        async with UnitOfWork(make_sessionmaker(engine)) as uow:
            repo = LeaderRepository(uow.session)
            stored = await repo.encrypted_secrets()
            for leader_id, token in stored:
                try:
                    rotated = cipher.rotate(token)
                except CredentialError as exc:
                    raise _Unreadable(leader_id) from exc
                await repo.set_secret(leader_id, rotated)
            await uow.commit()
        return len(stored)
    finally:
        await engine.dispose()
