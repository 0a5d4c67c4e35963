"""The running stack and its accounts, as the browser tests see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    """A registered user, with the bearer token for API set-up calls."""

    email: str
    password: str
    access_token: str
    tenant_id: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for API calls made by the test itself."""
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Kibitz:
    """The running all-in-one stack."""

    url: str
    data_dir: Path

    def api(
        self, method: str, path: str, account: Account | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One API call through the gateway (set-up and checks; the UI is what is under test)."""
        headers = {**(account.headers if account else {}), **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def require(self, path: str, what: str) -> None:
        """Skip when the service behind `path` is absent from this build (gateway answers 503)."""
        answer = self.api("GET", path)
        if answer.status_code == 503:
            pytest.skip(f"{what} is not running in this build ({path} answers 503)")

    def register(
        self, *, tenant_name: str | None = None, invite_code: str | None = None
    ) -> Account:
        """A new user (and, without an invite, a new tenant on Basic) via the API."""
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        body: dict[str, Any] = {"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"}
        if tenant_name:
            body["tenant_name"] = tenant_name
        if invite_code:
            body["invite_code"] = invite_code
        answer = self.api("POST", "/auth/register", json=body)
        assert answer.status_code == 201, answer.text
        payload = answer.json()
        return Account(email, PASSWORD, payload["access_token"], payload["user"]["tenant_id"])

    def create_echo_agent(self, account: Account, name: str = "Echo bot") -> dict[str, Any]:
        """An agent on the offline echo provider."""
        answer = self.api(
            "POST",
            "/agents/create",
            account,
            json={
                "name": name,
                "llm_provider": "echo",
                "model": "echo",
                "instructions": "Repeat after me.",
            },
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())
