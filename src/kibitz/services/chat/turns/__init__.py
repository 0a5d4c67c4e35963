"""Who answers a send, in what order: a chat's mode and the `@Name` mentions of the message."""
