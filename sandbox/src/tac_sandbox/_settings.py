"""What a sandbox is: where it listens, where the app under test listens, and its identity."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tac_sandbox._db import Database, dumps, loads
from tac_sandbox._ids import sid, ttid


class SandboxSettings(BaseModel):
    """Settings of one sandbox process."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)
    db: str = Field(default="", description="SQLite file; ':memory:' for none; '' for the default")
    app_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where the TAC app listens (webhooks go to /webhook, voice to /twiml)",
    )
    public_url: str | None = Field(
        default=None, description="How the app reaches the sandbox (default http://host:port)"
    )
    status_timeout_unit_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds per Orchestrator status-timeout unit (Twilio: minutes)",
    )
    webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Deliveries tried per webhook before giving up"
    )
    webhook_base_delay_seconds: float = Field(
        default=0.5, ge=0, description="Delay before the first redelivery; doubles each time"
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one delivery may take before it counts as failed"
    )

    @field_validator("app_url", "public_url")
    @classmethod
    def _full_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be a full URL like http://127.0.0.1:8000, got {value!r}")
        return value.rstrip("/")

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


class SandboxIdentity(BaseModel):
    """The account, credentials, numbers and resource ids a sandbox answers to.

    Made once per database and kept there, so a ``.env`` written for a sandbox stays valid
    across restarts.
    """

    account_sid: str
    auth_token: str
    api_key: str
    api_secret: str
    phone_number: str
    whatsapp_number: str
    rcs_sender_id: str
    conversation_configuration_id: str
    memory_store_id: str
    knowledge_base_id: str
    studio_flow_sid: str
    intelligence_configuration_id: str
    intelligence_summary_operator_id: str = ""

    @classmethod
    def generate(cls) -> SandboxIdentity:
        return cls(
            account_sid=sid("AC"),
            auth_token=sid("XX")[2:],
            api_key=sid("SK"),
            api_secret=sid("XX")[2:],
            phone_number="+15005550006",
            whatsapp_number="whatsapp:+15005550006",
            rcs_sender_id="rcs:opentac_sandbox_agent",
            conversation_configuration_id=ttid("conv_configuration"),
            memory_store_id=ttid("mem_store"),
            knowledge_base_id=ttid("know_knowledgebase"),
            studio_flow_sid=sid("FW"),
            intelligence_configuration_id=ttid("intelligence_configuration"),
            intelligence_summary_operator_id=ttid("intelligence_operator"),
        )

    @classmethod
    def load_or_create(cls, db: Database) -> SandboxIdentity:
        db.migrate(
            "identity-1",
            "CREATE TABLE sandbox_identity"
            " (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);",
        )
        row = db.one("SELECT doc FROM sandbox_identity WHERE id = 1")
        if row is not None:
            identity = cls.model_validate(loads(row["doc"]))
            if identity.intelligence_summary_operator_id:
                return identity
            # A database from before the summary operator had an id of its own.
            identity.intelligence_summary_operator_id = ttid("intelligence_operator")
            db.execute(
                "UPDATE sandbox_identity SET doc = ? WHERE id = 1", (dumps(identity.model_dump()),)
            )
            return identity
        identity = cls.generate()
        db.execute(
            "INSERT INTO sandbox_identity (id, doc) VALUES (1, ?)", (dumps(identity.model_dump()),)
        )
        return identity
