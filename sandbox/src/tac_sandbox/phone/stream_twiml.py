"""Reading ``<Connect><Stream>`` TwiML (Media Streams), checked the way Twilio checks it.

A ``<Response>`` whose ``<Connect action method>`` holds one ``<Stream url name statusCallback>``
with ``<Parameter name value>`` nouns; the ``url`` must be ``ws://`` or ``wss://`` without a
query string (Twilio's error 31920 otherwise). ``<Redirect>`` TwiML (a live call sent elsewhere
through the Calls API) is read by :func:`parse_redirect`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from tac_sandbox._twiml import TwimlError


@dataclass(frozen=True)
class StreamTwiml:
    """What the phone needs from the TwiML of a Media Streams call."""

    url: str
    name: str | None = None
    action: str | None = None
    method: str = "POST"
    status_callback: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)


def _root(document: str) -> ET.Element:
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise TwimlError(f"the TwiML is not XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"the TwiML root must be <Response>, got <{root.tag}>")
    return root


def parse_stream_twiml(document: str, base_url: str) -> StreamTwiml:
    """The ``<Connect><Stream>`` of ``document``; relative URLs resolve against ``base_url``."""
    root = _root(document)
    connect = root.find("Connect")
    if connect is None:
        raise TwimlError("the TwiML has no <Connect>")
    streams = connect.findall("Stream")
    if len(streams) != 1:
        raise TwimlError(f"<Connect> must hold exactly one <Stream>, found {len(streams)}")
    stream = streams[0]
    url = stream.get("url") or ""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise TwimlError(f"<Stream url> must be a ws:// or wss:// URL (31920), got {url!r}")
    if parts.query:
        raise TwimlError(f"<Stream url> must not have a query string (31920), got {url!r}")
    parameters: dict[str, str] = {}
    for parameter in stream.findall("Parameter"):
        name = parameter.get("name")
        if not name:
            raise TwimlError("<Parameter> needs a name")
        parameters[name] = parameter.get("value") or ""
    action = connect.get("action")
    return StreamTwiml(
        url=url,
        name=stream.get("name"),
        action=urljoin(base_url, action) if action else None,
        method=(connect.get("method") or "POST").upper(),
        status_callback=stream.get("statusCallback"),
        parameters=parameters,
    )


def is_stream_twiml(document: str) -> bool:
    """Whether ``document`` connects a call to a Media Stream."""
    try:
        root = _root(document)
    except TwimlError:
        return False
    connect = root.find("Connect")
    return connect is not None and connect.find("Stream") is not None


def parse_redirect(document: str) -> tuple[str, str] | None:
    """``(url, method)`` of a ``<Redirect>`` TwiML document, or ``None``."""
    try:
        root = _root(document)
    except TwimlError:
        return None
    redirect = root.find("Redirect")
    if redirect is None or not (redirect.text or "").strip():
        return None
    return redirect.text.strip(), (redirect.get("method") or "POST").upper()  # type: ignore[union-attr]
