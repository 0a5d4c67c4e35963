"""The sign-in cookie and the redirect target: sealed, short-lived, and a path of the web app."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet

from kibitz.kit.encryption import SecretCipher
from kibitz.services.auth.sso.errors import SignInFailed
from kibitz.services.auth.sso.login_state import (
    LoginStateSeal,
    PendingSignIn,
    new_sign_in_request,
    web_app_path,
)


@pytest.mark.parametrize("path", ["/dashboard", "/chat/abc?x=1#top", "/settings"])
def test_paths_of_the_web_app_are_kept(path: str) -> None:
    assert web_app_path(path) == path


def test_no_redirect_means_the_dashboard() -> None:
    assert web_app_path(None) == "/dashboard"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "///evil.example",
        "javascript:alert(1)",
        "evil.example/path",
        "/a\nb",
        "/" + "a" * 600,
    ],
)
def test_anything_else_is_refused(target: str) -> None:
    assert web_app_path(target) is None


def _seal(max_age: int = 600) -> LoginStateSeal:
    return LoginStateSeal(SecretCipher([Fernet.generate_key()]), max_age_seconds=max_age)


def test_a_sealed_sign_in_opens_to_the_same_values() -> None:
    seal = _seal()
    pending = PendingSignIn("corp", new_sign_in_request("https://k.example/cb"), "/chat/1")
    assert seal.open(seal.seal(pending)) == pending


def test_fresh_sign_ins_never_share_state_nonce_or_verifier() -> None:
    first, second = new_sign_in_request("u"), new_sign_in_request("u")
    assert len({first.state, first.nonce, first.code_verifier, second.state}) == 4
    assert 43 <= len(first.code_verifier) <= 128


def test_a_cookie_sealed_with_another_key_or_changed_is_refused() -> None:
    pending = PendingSignIn("corp", new_sign_in_request("u"), "/")
    value = _seal().seal(pending)
    with pytest.raises(SignInFailed) as refused:
        _seal().open(value)
    assert refused.value.code == "sso_expired"
    seal = _seal()
    genuine = seal.seal(pending)
    changed = genuine[:-6] + ("A" if genuine[-6] != "A" else "B") + genuine[-5:]
    with pytest.raises(SignInFailed):
        seal.open(changed)
    with pytest.raises(SignInFailed):
        seal.open(None)


def test_an_old_cookie_is_refused() -> None:
    seal = _seal(max_age=1)
    value = seal.seal(PendingSignIn("corp", new_sign_in_request("u"), "/"))
    time.sleep(2.1)
    with pytest.raises(SignInFailed) as refused:
        seal.open(value)
    assert refused.value.code == "sso_expired"
