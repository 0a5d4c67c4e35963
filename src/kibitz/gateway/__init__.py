"""The API gateway: routing, token check, rate limits, load balancing, web UI and API reference."""
