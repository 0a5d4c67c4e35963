"""Where a new message goes in a chat's tree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Under `parent_id`, as a new root (`root`), or, by default, after the newest leaf: where
    the conversation the client shows ends."""

    parent_id: uuid.UUID | None = None
    root: bool = False

    @property
    def after_newest_leaf(self) -> bool:
        """Whether the parent is found at the send: the newest leaf when it is stored."""
        return self.parent_id is None and not self.root

    @classmethod
    def under(cls, parent_id: uuid.UUID | None) -> Placement:
        """Beside the children of `parent_id` (a new root when None): an edit's or a
        regeneration's place."""
        return cls(parent_id=parent_id, root=parent_id is None)


NEWEST_LEAF = Placement()
