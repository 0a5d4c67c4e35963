"""Identifiers: time-ordered UUIDv7 so that newer rows sort after older ones."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    """A new UUIDv7 (time-ordered)."""
    return uuid.UUID(int=uuid6.uuid7().int)
