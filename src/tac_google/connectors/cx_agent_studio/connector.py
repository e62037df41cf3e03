"""Agents built in CX Agent Studio (Customer Engagement Suite), over CES ``runSession``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tac.connectors import Turn
from tac.connectors.streaming import RunEvent
from tac.models.session import ConversationSession
from tac_google.connectors._base import GoogleConnector, logger, reply_text
from tac_google.connectors._rest import GoogleREST, TokenProvider, encode_name, parse_agent_id
from tac_google.connectors.cx_agent_studio.voice_s2s import VoiceS2SChannel, VoiceS2SConfig

if TYPE_CHECKING:
    from tac.channels.voice import VoiceChannel
    from tac.core.tac import TAC

__all__ = ["CXAgentStudioConnector", "end_session_metadata"]

GOODBYE = "Thank you for calling. Goodbye!"


def end_session_metadata(outputs: Any) -> dict[str, Any] | None:
    """The ``endSession`` metadata among a ``runSession`` answer's outputs (``{}`` when it has
    none), or ``None`` when the agent did not end the session."""
    for output in outputs if isinstance(outputs, list) else []:
        if isinstance(output, Mapping) and isinstance(output.get("endSession"), Mapping):
            metadata = output["endSession"].get("metadata")
            return dict(metadata) if isinstance(metadata, Mapping) else {}
    return None


class CXAgentStudioConnector(GoogleConnector):
    """Answer every channel with a CX Agent Studio agent through CES ``runSession`` (v1),
    text in and text out: SMS, Chat, RCS, WhatsApp and ConversationRelay voice.

    CES keeps the history in a session per conversation (``<app>/sessions/<conversation id>``).
    The memory is put before the customer's message, only when it changed since it was last
    sent. When the agent calls its ``end_session`` tool (done, or escalated), a call hangs up
    after the reply (``handoffData`` ``"call_ended"``), saying ``goodbye`` when the agent said
    nothing; the session is over on CES, so a later message opens a new one.

    Args:
        tac: the app's TAC (its HTTP connection pool carries the requests).
        agent_id: the app, ``projects/<project>/locations/<location>/apps/<app-id>``.
        voice_config: a ``VoiceChannelConfig`` (or its dict) for ConversationRelay voice, a
            :class:`VoiceS2SConfig` for native speech-to-speech (:class:`VoiceS2SChannel`), or
            ``None``: :attr:`voice` is ``None`` (no voice channel to serve).
        goodbye: said when the agent ends a call without a word (``None``: nothing).
        credentials: ``google.auth`` credentials (default: ``google.auth.default()``).
        token_provider: returns an access token instead (sync or async).
        api_base_url: replaces ``https://ces.googleapis.com``.
        timeout: seconds a request may take.

    Attributes: ``voice_cascaded`` (the ConversationRelay channel, or ``None``), ``voice_s2s``
    (the speech-to-speech channel, or ``None``), ``voice`` (whichever was built), and the
    messaging channels as other connectors.

    Raises:
        ValueError: ``agent_id`` is not an app's resource name.
    """

    def __init__(
        self,
        tac: TAC,
        agent_id: str,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
        *,
        goodbye: str | None = GOODBYE,
        credentials: Any = None,
        token_provider: TokenProvider | None = None,
        api_base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.agent_id = parse_agent_id(agent_id, "apps")[0]
        self.goodbye = goodbye
        self.base_url = (api_base_url or "https://ces.googleapis.com").rstrip("/")
        self.rest = GoogleREST(
            tac,
            credentials=credentials,
            token_provider=token_provider,
            timeout=timeout,
            component="CXAgentStudioConnector",
        )
        self._ended: dict[str, int] = {}
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=None if isinstance(voice_config, VoiceS2SConfig) else voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )
        self.voice_s2s: VoiceS2SChannel | None = None
        self.voice_cascaded: VoiceChannel | None = None
        if isinstance(voice_config, VoiceS2SConfig):
            self.voice_s2s = VoiceS2SChannel(
                tac,
                self.agent_id,
                voice_config,
                credentials=credentials,
                token_provider=token_provider,
                api_base_url=api_base_url,
            )
        elif voice_config is not None:
            self.voice_cascaded = self.channels.voice
        self.voice: VoiceChannel | None = self.voice_s2s or self.voice_cascaded  # type: ignore[assignment]

    def session_name(self, session: ConversationSession) -> str:
        """The CES session of a conversation (a new one after the agent ended the last)."""
        cid = session.conversation_id
        ended = self._ended.get(cid, 0)
        return f"{self.agent_id}/sessions/{cid}" + (f"-{ended}" if ended else "")

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        name = self.session_name(turn.session)
        url = f"{self.base_url}/v1/{encode_name(name)}:runSession"
        data = await self.send_with_memory(
            turn,
            lambda text: self.rest.post_json(
                url, {"config": {"session": name}, "inputs": [{"text": text}]}
            ),
        )
        outputs = data.get("outputs")
        reply = reply_text(
            o["text"]
            for o in (outputs if isinstance(outputs, list) else [])
            if isinstance(o, Mapping) and isinstance(o.get("text"), str)
        )
        ended = end_session_metadata(outputs)
        if ended is not None:
            cid = turn.session.conversation_id
            logger.info(
                "CES ended the session",
                conversation_id=cid,
                session_escalated=ended.get("session_escalated"),
                reason=ended.get("reason"),
            )
            self._ended[cid] = self._ended.get(cid, 0) + 1
            if self.end_call(turn.session) and not reply and self.goodbye:
                reply = self.goodbye
        if reply:
            yield reply
        elif ended is None:
            logger.warning(
                "CES answered without text", conversation_id=turn.session.conversation_id
            )

    async def forget(self, session: ConversationSession) -> None:
        await super().forget(session)
        self._ended.pop(session.conversation_id, None)
