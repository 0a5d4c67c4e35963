"""LLM call metrics: latency to the first token and in total, tokens in and out, errors.

What concerns tenants is labelled by plan, never by tenant id: a label per tenant would make a
series per tenant (per-tenant figures come from the tenants service's usage counters).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "kibitz_llm_time_to_first_token_seconds",
    "From the call to the provider to its first streamed token",
    ["provider", "plan"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
LLM_DURATION = Histogram(
    "kibitz_llm_request_duration_seconds",
    "Whole LLM call, first attempt to last token",
    ["provider", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 300),
)
LLM_TOKENS = Counter(
    "kibitz_llm_tokens_total",
    "Tokens sent to and received from providers",
    ["provider", "direction", "plan"],
)
LLM_ERRORS = Counter(
    "kibitz_llm_errors_total", "Failed LLM calls, by provider and kind", ["provider", "kind"]
)
LLM_RETRIES = Counter(
    "kibitz_llm_retries_total", "Attempts retried before the first token", ["provider"]
)
KNOWLEDGE_RETRIEVAL_SECONDS = Histogram(
    "kibitz_knowledge_retrieval_seconds",
    "Fetching knowledge sources for a reply, by outcome",
    ["outcome"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2),
)
