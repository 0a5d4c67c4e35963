"""Auth's text fields judge control characters as every other service's do: through
kit/inputs.py's SingleLineText (issue 15, finding 8)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kibitz.services.auth.api_keys.schemas import ApiKeyCreate
from kibitz.services.auth.schemas import RegisterRequest

ACCOUNT = {"email": "ada@example.com", "password": "correct horse battery staple"}
# Format characters belong to text: the zero-width joiner builds emoji, marks order scripts.
WRITTEN = ["👩\u200d💻 Ada", "Ada\u00a0Lovelace", "\u200f\u05e9\u05dc\u05d5\u05dd"]


@pytest.mark.parametrize("name", WRITTEN)
def test_names_people_write_are_accepted(name: str) -> None:
    request = RegisterRequest.model_validate({**ACCOUNT, "full_name": name, "tenant_name": name})
    assert request.full_name == name.strip() and request.tenant_name == name.strip()
    assert ApiKeyCreate.model_validate({"name": name}).name == name.strip()


@pytest.mark.parametrize("name", ["Ada\x00", "Ada\nLovelace", "Ada\x1b[31m", "Ada\x7f"])
def test_control_characters_are_refused_with_the_shared_message(name: str) -> None:
    for field in ("full_name", "tenant_name", "invite_code"):
        with pytest.raises(ValidationError, match="must not contain control characters"):
            RegisterRequest.model_validate({**ACCOUNT, field: name})
    with pytest.raises(ValidationError, match=r"control characters \(found U\+"):
        ApiKeyCreate.model_validate({"name": name})
