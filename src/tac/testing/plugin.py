"""pytest plugin: ``sandbox``, ``sandbox_factory``, ``sandbox_settings``, ``customer`` and
``caller`` fixtures.

Opt in with ``pytest_plugins = ["tac.testing.plugin"]`` in a ``conftest.py`` (or ``pytest -p
tac.testing.plugin``); installing opentac registers nothing with pytest. Each test gets a fresh
in-process sandbox on a loopback port with an in-memory database. Override the
``sandbox_settings`` fixture to change settings for a module or a whole suite. The async
fixtures need ``pytest-asyncio``; the sandbox loads only when a test uses one, and a missing
extra fails that test with what to install.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tac.sandbox import Caller, Customer, Sandbox

SandboxFactory = Callable[..., Awaitable["Sandbox"]]


def _sandbox_class() -> type[Sandbox]:
    try:
        from tac.sandbox import Sandbox
    except ModuleNotFoundError as exc:
        raise pytest.UsageError(
            f"tac.testing's sandbox fixtures need the 'testing' extra (missing module "
            f'{exc.name!r}): pip install "opentac[testing]"'
        ) from exc
    return Sandbox


try:
    import pytest_asyncio
except ImportError:  # the plugin still loads; the fixtures explain what is missing
    pytest_asyncio = None  # type: ignore[assignment]


@pytest.fixture
def sandbox_settings() -> dict[str, Any]:
    """Settings for the ``sandbox`` fixture (``app_url``, ``status_timeout_unit_seconds``, ...).

    The defaults retry webhooks quickly (3 attempts, 50 ms apart at first) so tests stay fast.
    """
    return {
        "webhook_attempts": 3,
        "webhook_base_delay_seconds": 0.05,
        "webhook_timeout_seconds": 5.0,
    }


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def sandbox_factory(sandbox_settings: dict[str, Any]) -> AsyncIterator[SandboxFactory]:
        """Start sandboxes with custom settings: ``sb = await sandbox_factory(app_url=...)``.

        ``subprocess=True`` runs one as ``python -m tac sandbox``. All stop after the test.
        """
        sandbox_class = _sandbox_class()

        async with AsyncExitStack() as stack:

            async def start(**overrides: Any) -> Sandbox:
                subprocess = bool(overrides.pop("subprocess", False))
                options = {**sandbox_settings, **overrides}
                return await stack.enter_async_context(
                    sandbox_class.start(subprocess=subprocess, **options)
                )

            yield start

    @pytest_asyncio.fixture
    async def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
        """A fresh in-process sandbox for this test."""
        return await sandbox_factory()

    @pytest_asyncio.fixture
    async def caller(sandbox: Sandbox) -> AsyncIterator[Caller]:
        """A phone of the ``sandbox`` fixture, not yet dialled (``await caller.dial()``), calling
        the app at the sandbox's ``app_url`` over ConversationRelay; hung up after the test."""
        async with sandbox.caller() as phone:
            yield phone

else:

    @pytest.fixture
    def sandbox_factory() -> SandboxFactory:
        """Needs pytest-asyncio."""
        raise pytest.UsageError("tac.testing's fixtures need pytest-asyncio: pip install it")

    @pytest.fixture
    def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
        """Needs pytest-asyncio."""
        raise pytest.UsageError("tac.testing's fixtures need pytest-asyncio: pip install it")

    @pytest.fixture
    def caller(sandbox: Sandbox) -> Caller:
        """Needs pytest-asyncio."""
        raise pytest.UsageError("tac.testing's fixtures need pytest-asyncio: pip install it")


@pytest.fixture
def customer(sandbox: Sandbox) -> Customer:
    """A simulated SMS customer of the ``sandbox`` fixture."""
    return sandbox.customer("sms")
