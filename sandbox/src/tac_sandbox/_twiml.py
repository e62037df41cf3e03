"""Reading the TwiML an app answers a call with, checked the way Twilio checks it.

Only what the sandbox's phone needs: ``<Response>`` with optional ``<Say>``/``<Pause>`` before a
``<Connect action method>`` that holds exactly one ``<ConversationRelay url ...>`` with zero or
more ``<Language>`` and ``<Parameter>`` nouns.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit


class TwimlError(ValueError):
    """The app's TwiML cannot start a ConversationRelay session (the message says why)."""


_CHANNELS = ("none", "dtmf", "speech", "any", "true", "false")
_BOOLEAN = ("true", "false")
# Attribute -> allowed values (compared case-insensitively); None means free text.
RELAY_ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "url": None,
    "welcomeGreeting": None,
    "welcomeGreetingInterruptible": _CHANNELS,
    "language": None,
    "ttsLanguage": None,
    "transcriptionLanguage": None,
    "ttsProvider": ("elevenlabs", "google", "amazon"),
    "voice": None,
    "transcriptionProvider": ("deepgram", "google"),
    "speechModel": None,
    "profanityFilter": _BOOLEAN,
    "dtmfDetection": _BOOLEAN,
    "partialPrompts": _BOOLEAN,
    "interruptible": _CHANNELS,
    "interruptSensitivity": ("low", "medium", "high"),
    "preemptible": _BOOLEAN,
    "reportInputDuringAgentSpeech": _CHANNELS,
    "hints": None,
    "intelligenceService": None,
    "elevenlabsTextNormalization": ("on", "off", "auto"),
    "debug": None,
    "events": None,
    "backgroundNoiseReduction": _BOOLEAN,
    "speechTimeout": None,
    "deepgramSmartFormat": _BOOLEAN,
    "ignoreBackchannel": _BOOLEAN,
    "eotThreshold": None,
    "conversationConfiguration": None,
}
LANGUAGE_ATTRIBUTES = ("code", "ttsProvider", "voice", "transcriptionProvider", "speechModel")
_LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$|^multi$")
_SPEECH_TIMEOUT = re.compile(r"^(auto|\d+)$")


@dataclass(frozen=True)
class RelayTwiml:
    """A parsed ``<Connect><ConversationRelay>``: what the phone does with the call."""

    url: str
    attributes: dict[str, str]
    languages: list[dict[str, str]] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    action: str | None = None
    action_method: str = "POST"
    said_before: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean attribute (``"true"``/``"false"``)."""
        value = self.attributes.get(name)
        return default if value is None else value.lower() == "true"

    @property
    def welcome_greeting(self) -> str | None:
        return self.attributes.get("welcomeGreeting")

    @property
    def conversation_configuration(self) -> str | None:
        return self.attributes.get("conversationConfiguration")

    @property
    def language(self) -> str:
        return self.attributes.get("transcriptionLanguage") or self.attributes.get(
            "language", "en-US"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "attributes": dict(self.attributes),
            "languages": [dict(lang) for lang in self.languages],
            "parameters": dict(self.parameters),
            "action": self.action,
            "actionMethod": self.action_method,
            "warnings": list(self.warnings),
        }


def parse_relay_twiml(text: str, base_url: str | None = None) -> RelayTwiml:
    """Parse and check ``text``; relative ``action`` URLs resolve against ``base_url``.

    Raises :class:`TwimlError` naming the element or attribute that Twilio would reject.
    """
    if not text or not text.strip():
        raise TwimlError("the TwiML is empty (expected <Response><Connect><ConversationRelay>)")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise TwimlError(f"the TwiML is not well-formed XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"the TwiML root element must be <Response>, got <{root.tag}>")
    said: list[str] = []
    for verb in root:
        if verb.tag == "Connect":
            return _connect(verb, base_url, said)
        if verb.tag == "Say":
            said.append((verb.text or "").strip())
        elif verb.tag != "Pause":
            raise TwimlError(
                f"<{verb.tag}> comes before <Connect>: the call never reaches ConversationRelay"
            )
    verbs = ", ".join(f"<{v.tag}>" for v in root) or "nothing"
    raise TwimlError(f"the TwiML has no <Connect> verb (found {verbs})")


def _connect(verb: ET.Element, base_url: str | None, said: list[str]) -> RelayTwiml:
    warnings: list[str] = []
    unknown = sorted(set(verb.attrib) - {"action", "method"})
    if unknown:
        warnings.append(f"<Connect> has unknown attributes: {', '.join(unknown)}")
    method = verb.attrib.get("method", "POST").upper()
    if method not in ("GET", "POST"):
        raise TwimlError(f"<Connect method> must be GET or POST, got {verb.attrib['method']!r}")
    action = verb.attrib.get("action")
    if action is not None:
        action = _absolute(action, base_url, "<Connect action>")
    relays = [child for child in verb if child.tag == "ConversationRelay"]
    others = [child.tag for child in verb if child.tag != "ConversationRelay"]
    if others:
        raise TwimlError(
            f"<Connect> may only hold <ConversationRelay> here, found <{'>, <'.join(others)}>"
        )
    if len(relays) != 1:
        raise TwimlError(
            f"<Connect> must hold exactly one <ConversationRelay>, found {len(relays)}"
        )
    relay = relays[0]
    attributes = dict(relay.attrib)
    for name, value in attributes.items():
        if name not in RELAY_ATTRIBUTES:
            warnings.append(f"<ConversationRelay> has an unknown attribute {name!r}")
            continue
        allowed = RELAY_ATTRIBUTES[name]
        if allowed is not None and value.lower() not in allowed:
            raise TwimlError(
                f"<ConversationRelay {name}> must be one of {', '.join(allowed)}; got {value!r}"
            )
    url = attributes.get("url")
    if not url:
        raise TwimlError("<ConversationRelay> needs a url attribute (the app's WebSocket)")
    parts = urlsplit(url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise TwimlError(f"<ConversationRelay url> must be a wss:// (or ws://) URL, got {url!r}")
    for attribute in ("language", "ttsLanguage", "transcriptionLanguage"):
        code = attributes.get(attribute)
        if code is not None and not _LANGUAGE_CODE.match(code):
            raise TwimlError(f"<ConversationRelay {attribute}> is not a language code: {code!r}")
    timeout = attributes.get("speechTimeout")
    if timeout is not None and not _SPEECH_TIMEOUT.match(timeout):
        raise TwimlError(
            f"<ConversationRelay speechTimeout> must be milliseconds or auto: {timeout!r}"
        )
    languages: list[dict[str, str]] = []
    parameters: dict[str, str] = {}
    for noun in relay:
        if noun.tag == "Language":
            languages.append(_language(noun, warnings))
        elif noun.tag == "Parameter":
            parameter = noun.attrib.get("name")
            if not parameter:
                raise TwimlError("<Parameter> needs a name attribute")
            parameters[parameter] = noun.attrib.get("value", "")
        else:
            raise TwimlError(f"<ConversationRelay> cannot hold <{noun.tag}>")
    return RelayTwiml(
        url=url,
        attributes=attributes,
        languages=languages,
        parameters=parameters,
        action=action,
        action_method=method,
        said_before=said,
        warnings=warnings,
    )


def _language(noun: ET.Element, warnings: list[str]) -> dict[str, str]:
    code = noun.attrib.get("code")
    if not code:
        raise TwimlError("<Language> needs a code attribute (e.g. es-MX)")
    if not _LANGUAGE_CODE.match(code):
        raise TwimlError(f"<Language code> is not a language code: {code!r}")
    unknown = sorted(set(noun.attrib) - set(LANGUAGE_ATTRIBUTES))
    if unknown:
        warnings.append(f"<Language code={code!r}> has unknown attributes: {', '.join(unknown)}")
    for name in ("ttsProvider", "transcriptionProvider"):
        value = noun.attrib.get(name)
        allowed = RELAY_ATTRIBUTES[name]
        if value is not None and allowed is not None and value.lower() not in allowed:
            raise TwimlError(
                f"<Language {name}> must be one of {', '.join(allowed)}; got {value!r}"
            )
    return dict(noun.attrib)


def _absolute(url: str, base_url: str | None, where: str) -> str:
    resolved = urljoin(base_url, url) if base_url else url
    parts = urlsplit(resolved)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TwimlError(f"{where} must be an http(s) URL, got {url!r}")
    return resolved


def verbs(text: str) -> list[dict[str, Any]]:
    """The verbs of a TwiML document as ``{"verb", "attributes", "text"}`` (for the timeline);
    an empty list when ``text`` is not TwiML."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError:
        return []
    if root.tag != "Response":
        return []
    return [
        {"verb": v.tag, "attributes": dict(v.attrib), "text": (v.text or "").strip()} for v in root
    ]
