"""A local stand-in for the Google REST endpoints the tac_google connectors call: Dialogflow CX
``detectIntent``, CES ``runSession``, and an Agent Engine deployment's sessions and
``streamQuery`` (served by a real ADK runner, as an Agent Studio app is an ADK app)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from google.adk.agents import Agent
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types

TOKEN = "ya29.test-token"


@dataclass
class Call:
    """One request the stand-in answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class GoogleStandIn:
    """``dialogflow``/``ces``: given each request's body, the answer's JSON (default: echo the
    text). ``agent``: the ADK agent behind the Agent Engine routes."""

    agent: Agent | None = None
    dialogflow: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ces: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.refreshes = 0
        self.sessions = InMemorySessionService()
        self.runner = (
            Runner(app_name="engine", agent=self.agent, session_service=self.sessions)
            if self.agent is not None
            else None
        )
        self.app = FastAPI()
        self.app.add_api_route(
            "/{path:path}", self.handle, methods=["POST", "DELETE"], response_model=None
        )

    def of(self, suffix: str) -> list[Call]:
        """The calls whose path ends with ``suffix``."""
        return [c for c in self.calls if c.path.endswith(suffix)]

    async def handle(self, path: str, request: Request) -> Response:
        raw = await request.body()
        form = request.headers.get("content-type", "").startswith("application/x-www-form")
        call = Call(
            request.method,
            "/" + path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            raw.decode() if form else json.loads(raw) if raw else None,
        )
        self.calls.append(call)
        if path == "token":  # Google's OAuth token endpoint (a refresh-token grant)
            self.refreshes += 1
            return _json({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if path.endswith(":detectIntent") and self.dialogflow is not None:
            return _json(self.dialogflow(call.body))
        if path.endswith(":runSession") and self.ces is not None:
            return _json(self.ces(call.body))
        if self.runner is not None:
            return await self._agent_engine(call)
        return _error(404, "NOT_FOUND", f"no such method: {path}")

    async def _agent_engine(self, call: Call) -> Response:
        if call.method == "POST" and call.path.endswith("/sessions"):
            session_id = call.query["sessionId"]
            user = call.body["userId"]
            found = await self.sessions.get_session(
                app_name="engine", user_id=user, session_id=session_id
            )
            if found is not None:
                message = f"Session with user-provided ID {session_id} already exists."
                return _error(400, "INVALID_ARGUMENT", message)
            await self.sessions.create_session(
                app_name="engine", user_id=user, session_id=session_id
            )
            return _json({"name": f"{call.path}/{session_id}/operations/1", "done": False})
        if call.method == "POST" and call.path.endswith(":streamQuery"):
            assert self.runner is not None
            assert call.body["class_method"] == "async_stream_query"
            query = call.body["input"]
            content = types.Content(role="user", parts=[types.Part(text=query["message"])])
            lines = [
                json.dumps(event.model_dump(mode="json", exclude_none=True))
                async for event in self.runner.run_async(
                    user_id=query["user_id"], session_id=query["session_id"], new_message=content
                )
            ]
            return Response("\n".join(lines) + "\n", media_type="application/json")
        if call.method == "DELETE" and "/sessions/" in call.path:
            session_id = call.path.rsplit("/", 1)[1]
            listed = await self.sessions.list_sessions(app_name="engine", user_id=None)
            for session in listed.sessions:
                if session.id == session_id:
                    await self.sessions.delete_session(
                        app_name="engine", user_id=session.user_id, session_id=session_id
                    )
                    return _json({"done": True})
            return _error(404, "NOT_FOUND", "Session not found.")
        return _error(404, "NOT_FOUND", f"no such method: {call.path}")


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data), media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    body = {"error": {"code": status, "message": message, "status": code}}
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def df_text(*texts: str, **extra: Any) -> dict[str, Any]:
    """A ``detectIntent`` answer: these texts, then ``extra`` response messages
    (``endInteraction={}``, ``liveAgentHandoff={"metadata": ...}``)."""
    messages: list[dict[str, Any]] = [{"text": {"text": [t]}} for t in texts]
    messages += [{key: value} for key, value in extra.items()]
    return {"responseId": "r1", "queryResult": {"responseMessages": messages}}
