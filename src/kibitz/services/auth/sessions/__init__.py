"""Sessions: refresh-token families and their tokens, the access tokens they issue, and the
revocations that end a session's access tokens in every service at once."""
