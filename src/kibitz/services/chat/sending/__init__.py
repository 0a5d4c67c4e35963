"""Sending a message: the Idempotency-Key, the checks, the quota gate and the stored send."""
