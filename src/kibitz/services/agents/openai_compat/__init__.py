"""The OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`): a tenant's agents as models
for any tool that speaks OpenAI's chat completions (the official SDKs, Open WebUI, LiteLLM)."""
