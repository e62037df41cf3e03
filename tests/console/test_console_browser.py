"""The web console, used as a person would: Debian's Chromium, headless, driven by Playwright.

Each test starts what `make demo` starts (the sandbox, the example agent, the console) and
works the page: text the agent, call it, set a trait, ask for a human. Screenshots go to
``test-output/console/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tac._demo import demo_stack

pytestmark = pytest.mark.integration

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed"
)
CHROMIUM = os.environ.get("OPENTAC_CHROMIUM") or shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium is not installed (scripts/ensure-services.sh installs it)",
        allow_module_level=True,
    )

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "console"
expect = playwright_api.expect
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)  # a loaded machine (2 cores, many test suites) is slow


@pytest.fixture
async def console() -> AsyncIterator[Any]:
    """A page on the console of a running demo (sandbox + example agent)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        demo_stack(env={}) as (sandbox, _server),
        playwright_api.async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{sandbox.url}/console")
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            yield page
            assert not errors, errors
        finally:
            await browser.close()


async def _text(page: Any, channel: str, text: str) -> Any:
    """Send ``text`` on ``channel``; returns the locator of the agent's reply to it."""
    replies = page.get_by_test_id(f"thread-{channel}").locator(".bubble.agent")
    before = await replies.count()
    await page.get_by_test_id(f"input-{channel}").fill(text)
    await page.get_by_test_id(f"send-{channel}").click()
    reply = replies.nth(before)
    await expect(reply).to_be_visible(timeout=TIMEOUT_MS)
    return reply


async def _call_and_say(page: Any, text: str) -> None:
    """Call the agent from the Voice tab and say ``text`` once the call is up."""
    await page.get_by_role("tab", name="Voice").click()
    await page.get_by_test_id("call-start").click()
    await expect(page.get_by_test_id("call-status")).to_contain_text("in call")
    await page.get_by_test_id("voice-input").fill(text)
    await page.get_by_test_id("voice-say").click()


async def test_send_an_sms_and_see_the_reply(console: Any) -> None:
    reply = await _text(console, "sms", "What is your returns policy?")
    await expect(reply).to_contain_text("within 30 days of delivery")
    await expect(reply.locator(".timing")).to_contain_text(re.compile(r"reply in \d+ ms"))
    # The live log shows the agent's API calls (Knowledge search) and the webhook, with latency.
    log = console.get_by_test_id("log")
    await expect(log).to_contain_text("/Search", timeout=TIMEOUT_MS)
    await expect(log.locator("tr.webhook").first).to_be_visible(timeout=TIMEOUT_MS)
    # WhatsApp, RCS and Chat threads work the same way.
    for channel in ("whatsapp", "rcs", "chat"):
        await console.get_by_role(
            "tab", name={"whatsapp": "WhatsApp"}.get(channel, channel.upper())
        ).click()
        reply = await _text(console, channel, "Hello!")
        await expect(reply).to_contain_text("Hello Ana!")
    await console.screenshot(path=str(OUTPUT / "sms.png"))


async def test_place_a_call_and_see_the_streamed_reply(console: Any) -> None:
    await _call_and_say(console, "What are your opening hours?")
    reply = console.get_by_test_id("voice-thread").locator(".bubble.agent[data-done=true]").first
    await expect(reply).to_contain_text("Monday to Friday", timeout=TIMEOUT_MS)
    assert int(await reply.get_attribute("data-tokens") or 0) > 5  # arrived token by token
    await expect(reply.locator(".timing")).to_contain_text(re.compile(r"first token \d+ ms"))
    # The keypad sends DTMF; the agent answers it.
    await console.get_by_test_id("key-5").click()
    await expect(console.get_by_test_id("voice-thread")).to_contain_text("You pressed 5.")
    # Interrupt sends ConversationRelay's interrupt frame with what the caller heard.
    await console.get_by_test_id("voice-interrupt").click()
    await expect(console.get_by_test_id("voice-thread")).to_contain_text(
        "you interrupted the agent"
    )
    await console.screenshot(path=str(OUTPUT / "voice.png"))
    await console.get_by_test_id("call-hangup").click()
    await expect(console.get_by_test_id("call-status")).to_have_text("no call")


async def test_set_the_language_trait_and_see_the_next_reply_change(console: Any) -> None:
    reply = await _text(console, "sms", "How long does delivery take?")
    await expect(reply).to_contain_text("Standard delivery takes 3 to 5 business days")
    await expect(reply).not_to_contain_text("Según")
    await console.get_by_test_id("trait-new-group").fill("Contact")
    await console.get_by_test_id("trait-new-name").fill("language")
    await console.get_by_test_id("trait-new-value").fill("spanish")
    await console.get_by_test_id("trait-save").click()
    await expect(console.get_by_test_id("trait-Contact-language")).to_have_value("spanish")
    reply = await _text(console, "sms", "How long does delivery take?")
    await expect(reply).to_contain_text("Según nuestro centro de ayuda")
    await console.screenshot(path=str(OUTPUT / "language.png"))


async def test_ask_for_a_human_and_see_the_conversation_in_the_inbox(console: Any) -> None:
    await _text(console, "sms", "What is your returns policy?")
    reply = await _text(console, "sms", "I want to talk to a human")
    await expect(reply).to_contain_text("connecting you with a human agent")
    task = console.get_by_test_id("flex-task").first
    await expect(task).to_be_visible(timeout=TIMEOUT_MS)
    await expect(task).to_contain_text("The customer asked to speak with a human agent.")
    await expect(task).to_contain_text("What is your returns policy?")  # the history
    await expect(task.get_by_test_id("flex-summary")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(console.get_by_test_id("flex-count")).to_have_text("1")
    await console.screenshot(path=str(OUTPUT / "handoff.png"))


async def test_ask_for_a_human_on_a_call_and_see_it_in_the_inbox(console: Any) -> None:
    await _call_and_say(console, "Can I speak to a person?")
    thread = console.get_by_test_id("voice-thread")
    await expect(thread).to_contain_text("connecting you with a human agent", timeout=TIMEOUT_MS)
    await expect(thread).to_contain_text("handed the call to a human", timeout=TIMEOUT_MS)
    await expect(console.get_by_test_id("call-status")).to_have_text("no call")
    task = console.get_by_test_id("flex-task").first
    await expect(task).to_contain_text("VOICE", timeout=TIMEOUT_MS)
    await expect(task).to_contain_text("Can I speak to a person?")
