"""Several agents in one chat: the new-chat picker, the plan's word on it, @mentions, a panel
answering in order, an orchestrator consulting the others, and the participants edited from the
chat header."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, REPO, Console, run_kibitz
from tests.browser.kibitz_app import Account, Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.browser


def _gold(kibitz: Kibitz) -> Account:
    """A tenant on the plan that has `multi_agent`."""
    account = kibitz.register()
    assert kibitz.api("POST", "/tenants/subscribe", account, json={"plan": "gold"}).is_success
    return account


def _agents(kibitz: Kibitz, account: Account, *names: str) -> list[dict[str, Any]]:
    return [kibitz.create_echo_agent(account, name) for name in names]


def _chat(kibitz: Kibitz, account: Account, agents: list[dict[str, Any]], mode: str) -> str:
    created = kibitz.api(
        "POST",
        "/chat/chats",
        account,
        json={"agent_ids": [agent["id"] for agent in agents], "mode": mode},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _chat_read(kibitz: Kibitz, account: Account, chat_id: str) -> dict[str, Any]:
    answer = kibitz.api("GET", f"/chat/chats/{chat_id}", account)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _participant_names(page: Page) -> list[str]:
    return [
        name.strip()
        for name in page.get_by_test_id("participant")
        .locator(".participants-picker__name")
        .all_inner_texts()
    ]


def test_a_plan_without_multi_agent_says_which_plan_has_it(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()  # Basic
    alice, _bob = _agents(kibitz, account, "Alice", "Bob")
    login(page, account)
    navigate(page, "/chat")
    page.get_by_role("radio", name=re.compile("Alice")).check()
    page.get_by_role("checkbox", name="Add Bob").check()
    send_message(page, "hello both")

    gate = page.get_by_test_id("plan-gate")
    expect(gate).to_contain_text("the Gold plan")
    expect(gate).to_contain_text("your Basic plan does not include them")
    # Nothing was stored: the words are kept and the page is still the new chat.
    expect(page.get_by_role("textbox", name="Message")).to_have_value("hello both")
    assert page.url.endswith("/chat")

    # The same sentence when adding an agent to an existing chat.
    chat_id = _chat(kibitz, account, [alice], "direct")
    navigate(page, f"/chat/{chat_id}")
    page.get_by_role("button", name="Edit participants").click()
    dialog = page.get_by_role("dialog", name="Participants")
    dialog.get_by_role("checkbox", name="Add Bob").check()
    dialog.get_by_role("button", name="Save participants").click()
    expect(dialog.get_by_test_id("plan-gate")).to_contain_text("the Gold plan")
    assert _chat_read(kibitz, account, chat_id)["agent_ids"] == [alice["id"]]
    assert console.page_errors == []


def test_participants_are_edited_from_the_chat_header(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = _gold(kibitz)
    alice, bob, carol = _agents(kibitz, account, "Alice", "Bob", "Carol")
    chat_id = _chat(kibitz, account, [alice], "direct")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    summary = page.get_by_test_id("participants-summary")
    expect(summary).to_contain_text("Alice · echo")

    summary.click()
    dialog = page.get_by_role("dialog", name="Participants")
    dialog.get_by_role("checkbox", name="Add Bob").check()
    dialog.get_by_role("checkbox", name="Add Carol").check()
    dialog.get_by_role("button", name="Make Carol the default").click()
    assert _participant_names(page) == ["Carol", "Alice", "Bob"]
    dialog.get_by_role("button", name="Move Bob up").click()
    assert _participant_names(page) == ["Carol", "Bob", "Alice"]
    dialog.get_by_role("radio", name=re.compile("^Panel")).check()
    dialog.get_by_role("button", name="Save participants").click()
    expect(dialog).to_be_hidden()
    expect(summary).to_contain_text("Carol, Bob, Alice")
    expect(summary).to_contain_text("Panel")
    chat = _chat_read(kibitz, account, chat_id)
    assert chat["agent_ids"] == [carol["id"], bob["id"], alice["id"]]
    assert chat["mode"] == "panel"

    # Back to one agent: the mode goes back to direct with it.
    summary.click()
    dialog.get_by_role("button", name="Remove Bob").click()
    dialog.get_by_role("button", name="Remove Alice").click()
    dialog.get_by_role("button", name="Save participants").click()
    expect(dialog).to_be_hidden()
    expect(summary).to_contain_text("Carol · echo")
    chat = _chat_read(kibitz, account, chat_id)
    assert (chat["agent_ids"], chat["mode"]) == ([carol["id"]], "direct")
    assert console.page_errors == []


def test_a_panel_picked_for_a_new_chat_answers_in_order_each_reply_labelled(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = _gold(kibitz)
    ada, grace, linus = _agents(kibitz, account, "Ada", "Grace", "Linus")
    login(page, account)
    navigate(page, "/chat")
    page.get_by_role("radio", name=re.compile("Grace")).check()
    page.get_by_role("checkbox", name="Add Linus").check()
    page.get_by_role("checkbox", name="Add Ada").check()
    page.get_by_role("button", name="Move Ada up").click()
    assert _participant_names(page) == ["Grace", "Ada", "Linus"]
    page.get_by_role("radio", name=re.compile("^Panel")).check()
    expect(page.get_by_role("radio", name=re.compile("^Panel"))).to_be_checked()
    send_message(page, "what do you all think")
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    chat_id = page.url.rsplit("/", 1)[-1]
    chat = _chat_read(kibitz, account, chat_id)
    assert chat["agent_ids"] == [grace["id"], ada["id"], linus["id"]]
    assert chat["mode"] == "panel"

    replies = agent_messages(page)
    expect(replies).to_have_count(3, timeout=30_000)
    for index in range(3):
        expect(replies.nth(index)).to_have_attribute("data-status", "complete", timeout=30_000)
    authors = replies.get_by_test_id("message-author").all_inner_texts()
    assert [author.strip() for author in authors] == ["Grace", "Ada", "Linus"]
    # Each agent has its own colour, the same on every reply and in the header.
    colours = [
        replies.nth(index).locator(".agent-avatar").evaluate("e => getComputedStyle(e).background")
        for index in range(3)
    ]
    assert len(set(colours)) == 3
    expect(replies.first).to_contain_text("what do you all think")

    # After a reload, the stored replies keep their labels.
    page.reload()
    authors = agent_messages(page).get_by_test_id("message-author")
    expect(authors).to_have_text(["Grace", "Ada", "Linus"])
    assert console.page_errors == []


def test_a_direct_chat_completes_mentions_and_the_named_agent_answers(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = _gold(kibitz)
    agents = _agents(kibitz, account, "Alice", "Bob Smith", "Bobby")
    chat_id = _chat(kibitz, account, agents, "direct")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    box = page.get_by_role("textbox", name="Message")
    menu = page.get_by_role("listbox", name="Mention an agent")

    box.press_sequentially("@bo")
    expect(menu.get_by_role("option")).to_have_text(
        [re.compile("@BobSmith"), re.compile("@Bobby$")]
    )
    expect(menu.get_by_role("option", selected=True)).to_have_text(re.compile("@BobSmith"))
    box.press("ArrowDown")
    expect(menu.get_by_role("option", selected=True)).to_have_text(re.compile("@Bobby$"))
    box.press("ArrowDown")  # wraps round
    expect(menu.get_by_role("option", selected=True)).to_have_text(re.compile("@BobSmith"))
    box.press("Enter")
    expect(menu).to_be_hidden()
    expect(box).to_have_value("@BobSmith ")
    # Escape closes the menu and keeps the words; Enter then sends.
    box.press_sequentially("and @al")
    expect(menu.get_by_role("option")).to_have_text([re.compile("@Alice$")])
    box.press("Escape")
    expect(menu).to_be_hidden()
    expect(box).to_have_value("@BobSmith and @al")
    box.press_sequentially("ice, hello")
    box.press("Enter")

    replies = agent_messages(page)
    expect(replies).to_have_count(2, timeout=30_000)
    for index in range(2):
        expect(replies.nth(index)).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(replies.get_by_test_id("message-author")).to_have_text(["Bob Smith", "Alice"])

    # An @name nobody in the chat has: said under the composer, with the names to use.
    send_message(page, "@carol are you there?")
    error = page.get_by_test_id("mention-error")
    expect(error).to_contain_text("@carol is not an agent in this chat")
    expect(error).to_contain_text("@Alice, @BobSmith, @Bobby")
    expect(box).to_have_value("@carol are you there?")
    expect(replies).to_have_count(2)
    assert console.page_errors == []


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`kibitz simulate-llm` in a process of its own: the OpenAI API the agents below call."""
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "kibitz"), "simulate-llm", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the simulator did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def simulated_kibitz(simulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kibitz]:
    """A stack whose OpenAI provider is the simulator (echo agents cannot call tools)."""
    env = {
        "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-simulated",
        "KIBITZ_AGENTS_OPENAI_BASE_URL": f"{simulator}/v1",
    }
    with run_kibitz(tmp_path_factory.mktemp("kibitz-simulated"), env) as running:
        yield running


@pytest.fixture
def simulated_page(browser: Browser, simulated_kibitz: Kibitz) -> Iterator[Page]:
    """A page of the simulated stack (not the package's shared one)."""
    context = browser.new_context(base_url=simulated_kibitz.url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def _ask(tool: str, task: str) -> str:
    """A simulator marker: the orchestrator's model calls `tool` with this task (`[` escaped
    in the JSON, so the delegate's own markers are not read as the orchestrator's)."""
    arguments = json.dumps({"task": task}).replace("[", "\\u005b")
    return f"[sim:tool={tool};args={arguments}]"


# The orchestrator's reply and its nested answers as the page shows them at one moment.
_SNAPSHOT = """() => {
  const group = document.querySelector('.message-group');
  if (!group) return null;
  const shown = (article) => ({
    status: article.dataset.status,
    author: article.querySelector('[data-testid=message-author]')?.textContent.trim(),
    text: article.querySelector('.message__bubble')?.textContent ?? '',
  });
  const nested = group.querySelector('[data-testid=delegated-answers]');
  return {
    orchestrator: shown(group.querySelector(':scope > [data-testid=agent-message]')),
    toggle: nested?.querySelector('.delegated__toggle')?.textContent.trim() ?? '',
    answers: nested ? [...nested.querySelectorAll('[data-testid=agent-message]')].map(shown) : [],
  };
}"""


def _watch_orchestration(page: Page, seconds: float = 30) -> list[dict[str, Any]]:
    """Snapshots of the orchestrated turn every 50 ms, until the orchestrator's reply is whole."""
    timeline: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        snapshot = page.evaluate(_SNAPSHOT)
        if snapshot is not None:
            timeline.append(snapshot)
            if snapshot["orchestrator"]["status"] == "complete":
                return timeline
        time.sleep(0.05)
    raise AssertionError(f"the orchestrator did not finish: {timeline[-3:]}")


def test_an_orchestrator_consults_two_agents_whose_answers_stream_nested_under_its_reply(
    simulated_kibitz: Kibitz, simulated_page: Page, artifacts: Path
) -> None:
    kibitz, page = simulated_kibitz, simulated_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    account = _gold(kibitz)
    for name, instructions in (
        ("Lead", "Coordinate."),
        ("Researcher", "Find old maps."),
        ("Critic", "Judge plans."),
    ):
        created = kibitz.api(
            "POST",
            "/agents/create",
            account,
            json={
                "name": name,
                "llm_provider": "openai",
                "model": "gpt-4o-mini",
                "instructions": instructions,
            },
        )
        assert created.status_code == 201, created.text
    login(page, account)
    navigate(page, "/chat")
    page.get_by_role("radio", name=re.compile("Lead")).check()
    page.get_by_role("checkbox", name="Add Researcher").check()
    page.get_by_role("checkbox", name="Add Critic").check()
    page.get_by_role("radio", name=re.compile("^Orchestrated")).check()
    # Each delegate answers in about 2 s (30 words 60 ms apart): long enough to watch it stream.
    slow = "[sim:tokens=30] [sim:gap-ms=60]"
    send_message(
        page,
        "Plan a trip "
        + _ask("ask_researcher", f"find old maps {slow}")
        + " "
        + _ask("ask_critic", f"judge the plan {slow}"),
    )
    # What the page shows, sampled every 50 ms until the orchestrator's reply is whole.
    timeline = _watch_orchestration(page)
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    chat = _chat_read(kibitz, account, page.url.rsplit("/", 1)[-1])
    assert chat["mode"] == "orchestrated" and len(chat["agent_ids"]) == 3
    streaming = [s for s in timeline if s["answers"] and s["answers"][0]["status"] == "streaming"]
    # Live: the first delegated answer shows, labelled, and grows in place while the
    # orchestrator waits for it (nothing of its final answer yet).
    assert len({s["answers"][0]["text"] for s in streaming}) > 2, timeline
    first = streaming[0]
    assert first["answers"][0]["author"] == "Researcher"
    assert first["toggle"].endswith("Consulting Researcher")
    assert first["orchestrator"]["author"] == "Lead"
    assert first["orchestrator"]["status"] in ("pending", "streaming")
    assert all("Simulated answer" not in s["orchestrator"]["text"] for s in streaming)
    # Then the second, once the first is whole.
    second = [s for s in timeline if len(s["answers"]) == 2]
    assert second[0]["answers"][0]["status"] == "complete"
    assert any(s["answers"][1]["status"] == "streaming" for s in second), timeline
    assert second[0]["answers"][1]["author"] == "Critic"
    # The orchestrator's final answer follows them, with their results.
    answered = [s for s in timeline if "Simulated answer" in s["orchestrator"]["text"]]
    assert [a["status"] for a in answered[0]["answers"]] == ["complete", "complete"]

    group = page.locator(".message-group")
    orchestrator = group.get_by_test_id("agent-message").first
    nested = group.get_by_test_id("delegated-answers")
    toggle = nested.get_by_role("button", name="Consulted Researcher, Critic")
    answers = nested.get_by_test_id("agent-message")
    expect(orchestrator).to_contain_text("Simulated answer from the tool results")
    expect(answers.get_by_test_id("message-author")).to_have_text(["Researcher", "Critic"])
    expect(answers.first).to_contain_text("You said: find old maps")
    expect(answers.nth(1)).to_contain_text("You said: judge the plan")
    # Nested: the delegated answers are not turns of the conversation of their own.
    expect(agent_messages(page)).to_have_count(3)
    expect(page.locator(".messages__inner > [data-testid=agent-message]")).to_have_count(0)
    page.screenshot(path=str(artifacts / "multi-agent-orchestrated.png"), full_page=True)

    # Collapsible, and still nested and labelled after a reload.
    expect(toggle).to_have_attribute("aria-expanded", "true")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(answers.first).to_be_hidden()
    toggle.click()
    expect(answers.nth(1)).to_be_visible()
    page.reload()
    expect(answers.get_by_test_id("message-author")).to_have_text(["Researcher", "Critic"])
    expect(orchestrator).to_contain_text("Simulated answer from the tool results")
    assert errors == []
