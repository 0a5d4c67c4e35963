"""The agents contract route by route, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kibitz.kit.http import INTERNAL_TOKEN_HEADER, acting_for
from tests.fixtures.stack import Account
from tests.services.agents.conftest import AgentsApi, assert_problem, parse_sse

AGENT_FIELDS = {
    "id",
    "tenant_id",
    "user_id",
    "name",
    "llm_provider",
    "model",
    "instructions",
    "temperature",
    "base_url",
    "has_api_key",
    "knowledge_collection_ids",
    "created_at",
    "updated_at",
}


async def test_create_returns_the_agent_with_its_fields(agents: AgentsApi) -> None:
    account = await agents.user()
    response = await agents.create(
        account,
        name="Tutor",
        llm_provider="openai",
        model="gpt-4o-mini",
        instructions="Be brief.",
        temperature=0.2,
    )
    assert response.status_code == 201, response.text
    agent = response.json()
    assert set(agent) == AGENT_FIELDS
    assert agent["name"] == "Tutor" and agent["model"] == "gpt-4o-mini"
    assert agent["instructions"] == "Be brief." and agent["temperature"] == 0.2
    assert agent["user_id"] == account.user["id"] and agent["tenant_id"] == account.tenant_id
    assert agent["has_api_key"] is False and agent["base_url"] is None
    assert response.headers["x-request-id"]


async def test_temperature_defaults_and_instructions_may_be_empty(agents: AgentsApi) -> None:
    account = await agents.user()
    response = await agents.http.post(
        f"{agents.url}/agents/create",
        json={"name": "Echo", "llm_provider": "echo", "model": "echo"},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["temperature"] == 0.7 and response.json()["instructions"] == ""


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 5}, "name"),
        ({"llm_provider": "gemini"}, "llm_provider"),
        ({"llm_provider": None}, "llm_provider"),
        ({"model": ""}, "model"),
        ({"model": "gpt 4"}, "model"),
        ({"model": "m" * 101}, "model"),
        ({"instructions": "i" * 8001}, "instructions"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.01}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"base_url": ""}, "base_url"),
        ({"base_url": "http://" + "a" * 2048}, "base_url"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": "k" * 513}, "api_key"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_create_refuses_bad_input_per_field(
    agents: AgentsApi, fields: dict[str, Any], field: str
) -> None:
    account = await agents.user()
    body = assert_problem(await agents.create(account, **fields), 422)
    assert any(error["field"] == field for error in body["errors"]), body


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"llm_provider": "echo", "model": "gpt-4o-mini"}, "model"),
        ({"llm_provider": "echo", "model": "echo", "api_key": "sk-x"}, "api_key"),
        ({"llm_provider": "openai", "model": "no-such-model"}, "model"),
        (
            {
                "llm_provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": "https://example.com/v1",
            },
            "base_url",
        ),
        ({"llm_provider": "custom", "model": "llama3"}, "base_url"),
        (
            {"llm_provider": "custom", "model": "llama3", "base_url": "ftp://example.com/v1"},
            "base_url",
        ),
    ],
)
async def test_create_refuses_fields_that_do_not_fit_together(
    agents: AgentsApi, fields: dict[str, Any], field: str
) -> None:
    account = await agents.user()
    body = assert_problem(await agents.create(account, **fields), 422)
    assert body["errors"][0]["field"] == field


async def test_routes_need_a_valid_bearer_token(agents: AgentsApi) -> None:
    agent_id = uuid.uuid4()
    calls = [
        ("POST", "/agents/create", {"name": "a", "llm_provider": "echo", "model": "echo"}),
        ("GET", "/agents/my", None),
        ("GET", "/agents/providers", None),
        ("GET", f"/agents/{agent_id}", None),
        ("PATCH", f"/agents/{agent_id}", {"name": "b"}),
        ("DELETE", f"/agents/{agent_id}", None),
        (
            "POST",
            "/agents/respond",
            {"agent_id": str(agent_id), "messages": [{"role": "user", "content": "x"}]},
        ),
    ]
    for method, path, body in calls:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = await agents.http.request(
                method, agents.url + path, json=body, headers=headers
            )
            assert_problem(response, 401)


async def test_my_lists_only_the_callers_agents_in_pages(agents: AgentsApi) -> None:
    account, other = await agents.user(), await agents.user()
    created = [(await agents.create_ok(account, name=f"A{i}"))["id"] for i in range(3)]
    await agents.create_ok(other, name="Theirs")
    first = await agents.http.get(f"{agents.url}/agents/my?limit=2", headers=account.headers)
    assert first.status_code == 200
    page = first.json()
    assert [item["id"] for item in page["items"]] == created[:2] and page["next_cursor"]
    second = await agents.http.get(
        f"{agents.url}/agents/my",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=account.headers,
    )
    assert [item["id"] for item in second.json()["items"]] == created[2:]
    assert second.json()["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "cursor=nonsense"])
async def test_my_refuses_bad_paging(agents: AgentsApi, query: str) -> None:
    account = await agents.user()
    assert_problem(
        await agents.http.get(f"{agents.url}/agents/my?{query}", headers=account.headers), 422
    )


async def test_get_patch_delete_one_agent(agents: AgentsApi) -> None:
    account = await agents.user()
    agent = await agents.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    url = f"{agents.url}/agents/{agent['id']}"
    fetched = await agents.http.get(url, headers=account.headers)
    assert fetched.status_code == 200 and fetched.json() == agent
    patched = await agents.http.patch(
        url,
        json={"name": "Renamed", "temperature": 1.5, "instructions": "Speak French."},
        headers=account.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Renamed" and patched.json()["temperature"] == 1.5
    assert patched.json()["model"] == "gpt-4o-mini"
    assert (await agents.http.get(url, headers=account.headers)).json()[
        "instructions"
    ] == "Speak French."
    deleted = await agents.http.delete(url, headers=account.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await agents.http.get(url, headers=account.headers), 404)
    assert_problem(await agents.http.delete(url, headers=account.headers), 404)


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"name": None}, 422),
        ({"temperature": 3}, 422),
        ({"model": "no-such-model"}, 422),
        ({"llm_provider": "custom"}, 422),
        ({"unknown": 1}, 422),
        ({"model": "gpt-4o"}, 403),
    ],
)
async def test_patch_refuses_bad_changes(
    agents: AgentsApi, fields: dict[str, Any], status: int
) -> None:
    account = await agents.user()
    agent = await agents.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    response = await agents.http.patch(
        f"{agents.url}/agents/{agent['id']}", json=fields, headers=account.headers
    )
    assert_problem(response, status)


async def test_patch_can_switch_provider_and_clear_the_key(agents: AgentsApi) -> None:
    account = await agents.user()
    agent = await agents.create_ok(
        account, llm_provider="openai", model="gpt-4o-mini", api_key="sk-user-123456"
    )
    assert agent["has_api_key"] is True
    url = f"{agents.url}/agents/{agent['id']}"
    cleared = await agents.http.patch(url, json={"api_key": None}, headers=account.headers)
    assert cleared.json()["has_api_key"] is False
    switched = await agents.http.patch(
        url,
        json={"llm_provider": "custom", "model": "llama3", "base_url": agents.sim.openai_base_url},
        headers=account.headers,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["base_url"] == agents.sim.openai_base_url
    back = await agents.http.patch(
        url, json={"llm_provider": "echo", "model": "echo"}, headers=account.headers
    )
    assert back.status_code == 200 and back.json()["base_url"] is None


@pytest.mark.parametrize("agent_id", ["not-a-uuid", "123"])
async def test_malformed_agent_ids_are_refused(agents: AgentsApi, agent_id: str) -> None:
    account = await agents.user()
    assert_problem(
        await agents.http.get(f"{agents.url}/agents/{agent_id}", headers=account.headers), 422
    )


async def test_another_users_agent_is_not_found_for_every_route(agents: AgentsApi) -> None:
    owner, intruder = await agents.user(), await agents.user()
    agent = await agents.create_ok(owner, name="Private")
    url = f"{agents.url}/agents/{agent['id']}"
    assert_problem(await agents.http.get(url, headers=intruder.headers), 404)
    assert_problem(
        await agents.http.patch(url, json={"name": "Mine"}, headers=intruder.headers), 404
    )
    assert_problem(await agents.http.delete(url, headers=intruder.headers), 404)
    assert_problem(await agents.respond(intruder, agent["id"]), 404)
    mine = await agents.http.get(url, headers=owner.headers)
    assert mine.status_code == 200 and mine.json()["name"] == "Private"


async def test_an_unknown_agent_is_not_found(agents: AgentsApi) -> None:
    account = await agents.user()
    assert_problem(await agents.respond(account, str(uuid.uuid4())), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "agent_id"),
        ({"agent_id": "nope", "messages": [{"role": "user", "content": "x"}]}, "agent_id"),
        ({"agent_id": "AGENT", "messages": []}, "messages"),
        ({"agent_id": "AGENT"}, "messages"),
        ({"agent_id": "AGENT", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"agent_id": "AGENT", "messages": [{"role": "user"}]}, "messages.0.content"),
        ({"agent_id": "AGENT", "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        (
            {
                "agent_id": "AGENT",
                "messages": [{"role": "user", "content": "x"}],
                "stream": "maybe",
            },
            "stream",
        ),
    ],
)
async def test_respond_refuses_bad_input_per_field(
    agents: AgentsApi, body: dict[str, Any], field: str
) -> None:
    account = await agents.user()
    agent = await agents.create_ok(account)
    if body.get("agent_id") == "AGENT":
        body = {**body, "agent_id": agent["id"]}
    response = await agents.http.post(
        f"{agents.url}/agents/respond", json=body, headers=account.headers
    )
    problem = assert_problem(response, 422)
    assert any(error["field"] == field for error in problem["errors"]), problem


async def test_respond_refuses_a_conversation_too_large(agents: AgentsApi) -> None:
    account = await agents.user()
    agent = await agents.create_ok(account)
    assert_problem(await agents.respond(account, agent["id"], content="x" * 32_001), 413)
    many = {"agent_id": agent["id"], "messages": [{"role": "user", "content": "hi"}] * 201}
    response = await agents.http.post(
        f"{agents.url}/agents/respond", json=many, headers=account.headers
    )
    assert_problem(response, 413)


async def test_echo_answers_json_and_sse(agents: AgentsApi) -> None:
    account = await agents.user()
    agent = await agents.create_ok(account)
    response = await agents.respond(account, agent["id"], content="the quick brown fox")
    assert response.status_code == 200
    assert response.json() == {
        "content": "the quick brown fox",
        "usage": {"input_tokens": 4, "output_tokens": 4},
        "model": "echo",
        "finish_reason": "stop",
    }
    status, events = await agents.stream(account, agent["id"], content="the quick brown fox")
    assert status == 200
    assert [data["content"] for name, data in events if name == "delta"] == [
        "the ",
        "quick ",
        "brown ",
        "fox",
    ]
    assert events[-1] == (
        "done",
        {
            "usage": {"input_tokens": 4, "output_tokens": 4},
            "finish_reason": "stop",
            "model": "echo",
        },
    )


async def test_providers_lists_what_the_deployment_and_plan_offer(agents: AgentsApi) -> None:
    account = await agents.user()
    response = await agents.http.get(f"{agents.url}/agents/providers", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["plan"] == "basic"
    by_id = {item["id"]: item for item in body["items"]}
    assert set(by_id) == {"echo", "openai", "anthropic", "custom"}
    assert by_id["echo"]["demo"] is True and "demo" in by_id["echo"]["label"]
    assert by_id["openai"]["configured"] is True and by_id["anthropic"]["configured"] is True
    models = {model["id"]: model for model in by_id["openai"]["models"]}
    assert models["gpt-4o-mini"] == {"id": "gpt-4o-mini", "size": "small", "allowed": True}
    assert models["gpt-4o"]["allowed"] is False
    assert by_id["custom"]["any_model"] is True and by_id["custom"]["accepts"] == [
        "base_url",
        "api_key",
    ]


async def test_openapi_documents_every_route(agents: AgentsApi) -> None:
    response = await agents.http.get(f"{agents.url}/agents/openapi.json")
    paths = response.json()["paths"]
    assert {
        "/agents/create",
        "/agents/my",
        "/agents/providers",
        "/agents/respond",
        "/agents/{agent_id}",
    } <= set(paths)
    assert "404" in paths["/agents/{agent_id}"]["get"]["responses"]
    assert "text/event-stream" in paths["/agents/respond"]["post"]["responses"]["200"]["content"]


ASK_TOOL = {
    "name": "ask_researcher",
    "description": "Ask the researcher agent.",
    "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
}
SCRIPTED_CALL = 'Plan it [sim:tool=ask_researcher;args={"task": "find old maps"}]'
TOOL_MODELS = [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("custom", "llama3")]


async def _tool_agent(api: AgentsApi, account: Any, provider: str, model: str) -> dict[str, Any]:
    # `custom` is any OpenAI-compatible server: here the simulator's OpenAI wire format.
    extra = {"base_url": api.sim.openai_base_url} if provider == "custom" else {}
    return await api.create_ok(account, llm_provider=provider, model=model, **extra)


async def _stream_events(
    api: AgentsApi, account: Any, body: dict[str, Any]
) -> list[tuple[str, Any]]:
    async with api.http.stream(
        "POST", f"{api.url}/agents/respond", json=body, headers=account.headers
    ) as response:
        raw = (await response.aread()).decode()
    assert response.status_code == 200, raw
    return parse_sse(raw)


@pytest.mark.parametrize(("provider", "model"), TOOL_MODELS)
async def test_respond_reports_the_tool_calls_of_a_model_offered_tools(
    agents_sqlite: AgentsApi, provider: str, model: str
) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await _tool_agent(api, account, provider, model)
    response = await api.respond(account, agent["id"], content=SCRIPTED_CALL, tools=[ASK_TOOL])
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["finish_reason"] == "tool_calls" and reply["content"] == ""
    (call,) = reply["tool_calls"]
    assert call["name"] == "ask_researcher" and call["arguments"] == {"task": "find old maps"}
    assert call["id"]
    wire = api.sim.requests[-1]["body"]
    assert [tool.get("name") or tool["function"]["name"] for tool in wire["tools"]] == [
        "ask_researcher"
    ]
    body = {
        "agent_id": agent["id"],
        "stream": True,
        "messages": [{"role": "user", "content": SCRIPTED_CALL}],
        "tools": [ASK_TOOL],
    }
    events = await _stream_events(api, account, body)
    assert [name for name, _ in events] == ["tool_call", "done"]
    assert events[0][1]["name"] == "ask_researcher"
    assert events[0][1]["arguments"] == {"task": "find old maps"} and events[0][1]["id"]
    assert events[1][1]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(("provider", "model"), TOOL_MODELS)
async def test_respond_passes_tool_results_back_and_the_model_answers_with_them(
    agents_sqlite: AgentsApi, provider: str, model: str
) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await _tool_agent(api, account, provider, model)
    first = await api.respond(account, agent["id"], content=SCRIPTED_CALL, tools=[ASK_TOOL])
    (call,) = first.json()["tool_calls"]
    messages = [
        {"role": "user", "content": SCRIPTED_CALL},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "The Tabula Rogeriana."},
    ]
    response = await api.respond(account, agent["id"], messages=messages, tools=[ASK_TOOL])
    assert response.status_code == 200, response.text
    reply = response.json()
    assert f"[{call['id']}] The Tabula Rogeriana." in reply["content"]
    assert reply["finish_reason"] in ("stop", "end_turn") and "tool_calls" not in reply
    body = {"agent_id": agent["id"], "stream": True, "messages": messages, "tools": [ASK_TOOL]}
    events = await _stream_events(api, account, body)
    text = "".join(data["content"] for name, data in events if name == "delta")
    assert f"[{call['id']}] The Tabula Rogeriana." in text and events[-1][0] == "done"


def _tool_call(**fields: Any) -> dict[str, Any]:
    return {"id": "call_1", "name": "ask_researcher", "arguments": {"task": "x"}, **fields}


def _with_call(call: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"tools": [{**ASK_TOOL, "name": "ask researcher"}]}, "tools.0.name"),
        ({"tools": [{**ASK_TOOL, "name": "a" * 65}]}, "tools.0.name"),
        ({"tools": [{**ASK_TOOL, "name": ""}]}, "tools.0.name"),
        ({"tools": [{**ASK_TOOL, "parameters": {"type": "string"}}]}, "tools.0.parameters"),
        (
            {"tools": [{**ASK_TOOL, "parameters": {"type": "object", "x": "y" * 20_000}}]},
            "tools.0.parameters",
        ),
        ({"tools": [{**ASK_TOOL, "name": f"t{i}"} for i in range(17)]}, "tools"),
        ({"tools": [ASK_TOOL, ASK_TOOL]}, "tools"),
        ({"tools": [{**ASK_TOOL, "surprise": 1}]}, "tools.0.surprise"),
        (
            {"messages": _with_call(_tool_call(arguments="{not json"))},
            "messages.1.tool_calls.0.arguments",
        ),
        (
            {"messages": _with_call(_tool_call(arguments='{"task": "x"}'))},
            "messages.1.tool_calls.0.arguments",
        ),
        ({"messages": _with_call(_tool_call(name="bad name!"))}, "messages.1.tool_calls.0.name"),
        ({"messages": _with_call(_tool_call(id="id with spaces"))}, "messages.1.tool_calls.0.id"),
        (
            {"messages": [{"role": "user", "content": "x", "tool_calls": [_tool_call()]}]},
            "messages.0",
        ),
        ({"messages": [{"role": "tool", "content": "result"}]}, "messages.0"),
        ({"messages": [{"role": "user", "content": "x", "tool_call_id": "call_1"}]}, "messages.0"),
        (
            {"messages": [{"role": "tool", "content": "result", "tool_call_id": "call_nowhere"}]},
            "messages.0",
        ),
    ],
)
async def test_respond_refuses_bad_tools_and_tool_messages(
    agents_sqlite: AgentsApi, extra: dict[str, Any], field: str
) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    before = len(api.sim.requests)
    response = await api.respond(account, agent["id"], **extra)
    problem = assert_problem(response, 422)
    assert any(error["field"] == field for error in problem["errors"]), problem
    assert len(api.sim.requests) == before  # refused before any model was called


async def test_an_echo_agent_offered_tools_is_a_clear_422(agents_sqlite: AgentsApi) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account)  # echo
    response = await api.respond(account, agent["id"], tools=[ASK_TOOL])
    problem = assert_problem(response, 422)
    assert problem["type"].endswith("tools-not-supported")
    assert "cannot call tools" in problem["detail"] and "echo" in problem["detail"]
    assert problem["errors"] == [{"field": "tools", "message": problem["detail"][len("tools: ") :]}]
    # Without tools the same agent answers as ever.
    assert (await api.respond(account, agent["id"], tools=[])).status_code == 200


async def test_a_service_acting_for_a_user_is_answered_as_that_user_and_nobody_else_is(
    agents: AgentsApi,
) -> None:
    owner, stranger = await agents.user(), await agents.user()
    agent = await agents.create_ok(owner)
    body = {"agent_id": agent["id"], "messages": [{"role": "user", "content": "as you"}]}
    route = f"{agents.url}/agents/internal/respond"
    credential = {INTERNAL_TOKEN_HEADER: agents.stack.running.platform.internal_token}

    def acting(account: Account) -> dict[str, str]:
        return acting_for(
            tenant_id=uuid.UUID(account.tenant_id), user_id=uuid.UUID(account.user["id"])
        )

    answered = await agents.http.post(route, json=body, headers={**credential, **acting(owner)})
    assert answered.status_code == 200, answered.text
    assert answered.json()["content"] == "as you"
    # Scoped by the user it names: another user's agent is not found.
    other = await agents.http.post(route, json=body, headers={**credential, **acting(stranger)})
    assert_problem(other, 404)
    # Without the service credential, or a wrong one, the user's own token opens nothing.
    for refused in (
        {**owner.headers, **acting(owner)},
        {INTERNAL_TOKEN_HEADER: "guessed", **acting(owner)},
        credential,  # the credential without naming whom it acts for
    ):
        assert_problem(await agents.http.post(route, json=body, headers=refused), 403)
