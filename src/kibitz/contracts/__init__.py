"""What crosses service boundaries: event payloads and internal request/response shapes."""
