"""The baseline for ``bench_voice``: the same server stack (uvicorn, Starlette) answering
ConversationRelay prompts with no SDK at all, so the difference is what opentac adds."""

from __future__ import annotations

import json
import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><ConversationRelay '
    'url="ws://127.0.0.1/ws" /></Connect></Response>'
)


async def twiml(request: Request) -> Response:
    await request.form()
    return Response(TWIML, media_type="application/xml")


async def relay(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = json.loads(message.get("text") or "{}")
        if data.get("type") == "prompt" and data.get("last", True):
            reply = {"type": "text", "token": data.get("voicePrompt", ""), "last": True}
            await websocket.send_text(json.dumps(reply, separators=(",", ":")))


app = Starlette(routes=[Route("/twiml", twiml, methods=["POST"]), WebSocketRoute("/ws", relay)])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        backlog=4096,
        ws=os.environ.get("BENCH_WS", "auto"),
    )
