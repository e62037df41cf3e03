"""CX Agent Studio's native speech-to-speech voice: the call's audio goes to CES
``BidiRunSession`` through opentac's Media Streams bridge (CES hears and speaks itself)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tac.channels.voice import VoiceChannel
from tac.channels.voice.media_streams import CallContext, SpeechToSpeechProviderConfig
from tac.channels.voice.media_streams._socket import ModelSocket, open_model_socket
from tac.channels.voice.media_streams.base import AudioDelta, ModelEvent, SpeechStarted
from tac.core.logging import get_logger
from tac.core.tac import TAC
from tac_google.connectors._rest import GoogleREST, TokenProvider, parse_agent_id
from tac_google.connectors.cx_agent_studio.voice_s2s._audio import Downsampler, Upsampler
from tac_google.connectors.cx_agent_studio.voice_s2s.config import VoiceS2SConfig

__all__ = ["CESSpeechModel", "VoiceS2SChannel"]

logger = get_logger("tac_google.voice_s2s")

_INPUT_RATE = 16000
_OUTPUT_RATE = 48000
_END_PLAYBACK_LIMIT = 5.0  # seconds an ended session waits for its last words to play


class _CESConnection:
    """One call's ``BidiRunSession``: μ-law in, LINEAR16 to CES; CES's audio back as μ-law."""

    def __init__(self, socket: ModelSocket, name: str) -> None:
        self.socket = socket
        self.name = name
        self.upsampler = Upsampler()
        self.downsampler = Downsampler(_OUTPUT_RATE)
        self.item = 0
        self.play_until = 0.0
        self.ended = False

    async def send_audio(self, payload: str) -> None:
        pcm = self.upsampler.convert(base64.b64decode(payload))
        audio = base64.b64encode(pcm).decode()
        await self.socket.send(json.dumps({"realtimeInput": {"audio": audio}}))

    async def events(self) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        socket = self.socket
        while await socket.wait():
            try:
                data = json.loads(socket.inbox.popleft())
            except ValueError:
                continue
            if not isinstance(data, Mapping):
                continue
            if "endSession" in data:
                self.ended = True
                logger.info("CES ended the session", session=self.name)
                # Twilio plays the audio at its pace: let the last words be heard
                await asyncio.sleep(min(max(self.play_until - loop.time(), 0), _END_PLAYBACK_LIMIT))
                return
            if "interruptionSignal" in data:
                self.item += 1  # what CES says next is a new utterance
                self.play_until = loop.time()
                yield SpeechStarted()
                continue
            output = data.get("sessionOutput")
            audio = output.get("audio") if isinstance(output, Mapping) else None
            if not isinstance(audio, str) or not audio:
                continue
            try:
                mulaw = self.downsampler.convert(base64.b64decode(audio))
            except (binascii.Error, ValueError):
                continue
            if mulaw:
                self.play_until = max(self.play_until, loop.time()) + len(mulaw) / 8000
                yield AudioDelta(f"ces-{self.item}", base64.b64encode(mulaw).decode())

    async def cancel_response(self) -> None:
        """CES stops speaking on its own when the caller barges in."""

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """CES keeps its own history."""

    async def send_tool_result(self, call_id: str, output: str) -> None:
        """CES runs the agent's tools itself."""

    async def update_instructions(self, instructions: str) -> None:
        """The agent's instructions live in CX Agent Studio."""

    async def close(self) -> None:
        await self.socket.close()


class CESSpeechModel:
    """A :class:`~tac.channels.voice.media_streams.SpeechToSpeechModel` for a CX Agent Studio
    app: each call opens ``BidiRunSession`` (session ``<app>/sessions/<conversation id>``,
    LINEAR16 at 16 kHz in and 48 kHz out), then sends ``welcome_greeting`` as the first turn
    (or the ``session_start`` event when it is ``None``)."""

    def __init__(self, agent_id: str, config: VoiceS2SConfig, rest: GoogleREST, url: str) -> None:
        self.agent_id = agent_id
        self.config = config
        self.rest = rest
        self.url = url

    async def connect(self, call: CallContext) -> _CESConnection:
        headers = await self.rest.auth_headers()
        socket = await open_model_socket(self.url, headers, open_timeout=10)
        name = f"{self.agent_id}/sessions/{call.session.conversation_id}"
        session: dict[str, Any] = {
            "session": name,
            "inputAudioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": _INPUT_RATE},
            "outputAudioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": _OUTPUT_RATE},
        }
        if self.config.deployment_id:
            session["deployment"] = self.config.deployment_id
        greeting = self.config.welcome_greeting
        kickoff: dict[str, Any] = (
            {"text": greeting} if greeting else {"event": {"event": "session_start"}}
        )
        try:
            await socket.send(json.dumps({"config": session}))
            await socket.send(json.dumps({"realtimeInput": kickoff}))
        except BaseException:
            await socket.close()
            raise
        return _CESConnection(socket, name)


class VoiceS2SChannel(VoiceChannel):
    """Native speech-to-speech voice for a CX Agent Studio app: calls are answered with
    ``<Connect><Stream>`` and their audio bridged to CES ``BidiRunSession`` by opentac's Media
    Streams bridge (marks, barge-in, hang-up and session bookkeeping are the bridge's). CES
    does its own speech recognition, synthesis and tools; when the agent ends the session the
    call hangs up once its last words have played.

    It is a :class:`~tac.channels.voice.VoiceChannel`, so ``TACFastAPIServer(voice_channel=...)``
    serves it. ``config`` is the :class:`VoiceS2SConfig` (or its dict); the other arguments are
    :class:`~tac_google.connectors.CXAgentStudioConnector`'s.
    """

    def __init__(
        self,
        tac: TAC,
        agent_id: str,
        config: VoiceS2SConfig | Mapping[str, Any] | None = None,
        *,
        credentials: Any = None,
        token_provider: TokenProvider | None = None,
        api_base_url: str | None = None,
        rest: GoogleREST | None = None,
    ) -> None:
        self.agent_id, project, location = parse_agent_id(agent_id, "apps")
        if config is None:
            config = VoiceS2SConfig()
        elif not isinstance(config, VoiceS2SConfig):
            config = VoiceS2SConfig.model_validate(dict(config))
        self.s2s_config = config
        self.deployment_id = config.deployment_id
        base = (api_base_url or "https://ces.googleapis.com").rstrip("/")
        ws_base = "ws" + base[4:] if base.startswith("http") else base
        url = f"{ws_base}/ws/google.cloud.ces.v1.SessionService/BidiRunSession/locations/{location}"
        if rest is None:
            rest = GoogleREST(
                tac,
                credentials=credentials,
                token_provider=token_provider,
                user_project=project,
                component="VoiceS2SChannel",
            )
        self.model = CESSpeechModel(self.agent_id, config, rest, url)
        super().__init__(tac, config=SpeechToSpeechProviderConfig(model=self.model))
