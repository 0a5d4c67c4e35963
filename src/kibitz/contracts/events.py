"""Event payloads, versioned. Names are `<service>.<past-tense fact>`."""

from __future__ import annotations

import uuid
from typing import ClassVar

from kibitz.kit.events import Event


class UserRegistered(Event):
    """A user signed up (into a new tenant, or into an existing one by invite)."""

    name: ClassVar[str] = "auth.user_registered"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    full_name: str | None = None
    role: str
    tenant_name: str | None = None
