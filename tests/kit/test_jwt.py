"""Access tokens: EdDSA signing, and verification that refuses every forgery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from kibitz.kit.jwt import (
    ACCESS_TOKEN_SECONDS,
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    InvalidToken,
    SigningKey,
    TokenVerifier,
)

USER = uuid.uuid4()
TENANT = uuid.uuid4()


class Jwks:
    """A JWKS document the verifier fetches, counting fetches."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [key.public_jwk() for key in self.keys]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(USER),
        "tid": str(TENANT),
        "role": "member",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def sign(key: SigningKey, payload: dict[str, Any], *, kid: str | None = None) -> str:
    return jwt.encode(
        payload, key.private_key, algorithm=ALGORITHM, headers={"kid": kid or key.kid}
    )


async def test_an_issued_token_verifies_to_its_principal() -> None:
    key = SigningKey.generate()
    token = key.issue_access_token(user_id=USER, tenant_id=TENANT, role="admin")
    principal = await TokenVerifier(Jwks(key)).verify(token)
    assert (principal.user_id, principal.tenant_id, principal.role) == (USER, TENANT, "admin")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == key.kid
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == ACCESS_TOKEN_SECONDS == 900
    assert payload["jti"] == principal.token_id


def test_a_key_round_trips_through_pem_and_publishes_no_private_part() -> None:
    key = SigningKey.generate()
    loaded = SigningKey.from_pem(key.to_pem(), key.kid)
    assert loaded.public_jwk() == key.public_jwk()
    jwk = key.public_jwk()
    assert "d" not in jwk
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


def test_only_ed25519_keys_load() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        SigningKey.from_pem(pem, "ec")


def forged(key: SigningKey, attack: str) -> str:
    now = int(time.time())
    if attack == "alg none":
        head = b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
        return f"{head}.{b64(json.dumps(claims()).encode())}."
    if attack == "HS256 with the public key":
        head = b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
        signing_input = f"{head}.{b64(json.dumps(claims()).encode())}"
        secret = json.dumps(key.public_jwk()).encode()
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"
    if attack == "expired":
        return key.issue_access_token(user_id=USER, tenant_id=TENANT, role="member", now=now - 3600)
    if attack == "not yet valid":
        return key.issue_access_token(user_id=USER, tenant_id=TENANT, role="member", now=now + 3600)
    if attack == "wrong iss":
        return sign(key, claims(iss="evil"))
    if attack == "wrong aud":
        return sign(key, claims(aud="elsewhere"))
    if attack == "no tenant":
        return sign(key, claims(tid=None))
    if attack == "sub not a uuid":
        return sign(key, claims(sub="admin"))
    if attack == "no jti":
        return sign(key, claims(jti=None))
    if attack == "tampered payload":
        head, _, signature = key.issue_access_token(
            user_id=USER, tenant_id=TENANT, role="member"
        ).split(".")
        return f"{head}.{b64(json.dumps(claims(role='owner')).encode())}.{signature}"
    if attack == "unknown kid":
        return sign(key, claims(), kid="nobody")
    if attack == "another key":
        other = SigningKey.generate()
        return sign(other, claims())
    if attack == "another key with our kid":
        return sign(SigningKey.generate(), claims(), kid=key.kid)
    if attack == "no kid":
        return jwt.encode(claims(), key.private_key, algorithm=ALGORITHM)
    if attack == "garbage":
        return "garbage"
    raise AssertionError(attack)


ATTACKS = [
    "alg none",
    "HS256 with the public key",
    "expired",
    "not yet valid",
    "wrong iss",
    "wrong aud",
    "no tenant",
    "sub not a uuid",
    "no jti",
    "tampered payload",
    "unknown kid",
    "another key",
    "another key with our kid",
    "no kid",
    "garbage",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_tokens_are_refused(attack: str) -> None:
    key = SigningKey.generate()
    with pytest.raises(InvalidToken):
        await TokenVerifier(Jwks(key)).verify(forged(key, attack))


async def test_the_jwks_is_cached() -> None:
    key = SigningKey.generate()
    jwks = Jwks(key)
    verifier = TokenVerifier(jwks)
    for _ in range(3):
        await verifier.verify(key.issue_access_token(user_id=USER, tenant_id=TENANT, role="member"))
    assert jwks.fetches == 1


async def test_an_unknown_kid_refetches_once_so_rotated_keys_verify() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    jwks = Jwks(old)
    verifier = TokenVerifier(jwks)
    await verifier.verify(old.issue_access_token(user_id=USER, tenant_id=TENANT, role="member"))
    jwks.keys.append(new)
    verifier._fetched_at -= 6  # the refetch on an unknown kid waits 5 s after the last fetch
    await verifier.verify(new.issue_access_token(user_id=USER, tenant_id=TENANT, role="member"))
    assert jwks.fetches == 2
    # Forged kids do not turn every request into a fetch.
    for _ in range(3):
        with pytest.raises(InvalidToken):
            await verifier.verify(sign(old, claims(), kid="forged"))
    assert jwks.fetches == 2


async def test_a_remembered_token_is_still_refused_once_it_expires() -> None:
    key = SigningKey.generate()
    verifier = TokenVerifier(Jwks(key))
    issued_at = time.time() - ACCESS_TOKEN_SECONDS + 1  # expires a second from now
    token = key.issue_access_token(user_id=USER, tenant_id=TENANT, role="member", now=issued_at)
    assert (await verifier.verify(token)).user_id == USER
    assert (await verifier.verify(token)).user_id == USER  # remembered
    time.sleep(1.2)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_remembered_token_is_refused_once_its_key_leaves_the_jwks() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    jwks = Jwks(old)
    verifier = TokenVerifier(jwks)
    token = old.issue_access_token(user_id=USER, tenant_id=TENANT, role="member")
    await verifier.verify(token)
    jwks.keys = [new]
    verifier._fetched_at -= 301  # the JWKS cache has run out
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
