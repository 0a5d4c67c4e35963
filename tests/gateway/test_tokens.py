"""The gateway's token check remembers valid tokens, but never past their expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from kibitz.gateway.tokens import TokenCheck
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS, InvalidToken, SigningKey, TokenVerifier


def _check(key: SigningKey) -> tuple[TokenCheck, list[int]]:
    fetches: list[int] = []

    async def fetch_jwks() -> dict[str, Any]:
        fetches.append(1)
        return {"keys": [key.public_jwk()]}

    return TokenCheck(TokenVerifier(fetch_jwks)), fetches


async def test_a_valid_token_is_verified_and_remembered() -> None:
    key = SigningKey.generate()
    check, fetches = _check(key)
    tenant = uuid.uuid4()
    token = key.issue_access_token(user_id=uuid.uuid4(), tenant_id=tenant, role="member")
    first = await check.principal(token)
    second = await check.principal(token)
    assert first == second and first.tenant_id == tenant
    assert len(fetches) == 1


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    key = SigningKey.generate()
    check, _ = _check(key)
    # Issued so that it expires one second from now.
    token = key.issue_access_token(
        user_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        role="member",
        now=time.time() - ACCESS_TOKEN_SECONDS + 1,
    )
    await check.principal(token)
    await asyncio.sleep(1.2)
    with pytest.raises(InvalidToken):
        await check.principal(token)


async def test_an_invalid_token_is_never_remembered() -> None:
    key = SigningKey.generate()
    check, _ = _check(key)
    with pytest.raises(InvalidToken):
        await check.principal("a.b.c")
    with pytest.raises(InvalidToken):
        await check.principal("a.b.c")
