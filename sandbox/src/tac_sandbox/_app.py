"""The sandbox's ASGI app: products under ``/{product}/...``, control API under ``/sandbox``."""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tac_sandbox._auth import check_basic_auth
from tac_sandbox._context import SandboxContext
from tac_sandbox._db import MEMORY, Database, default_db_path
from tac_sandbox._env import app_environment
from tac_sandbox._errors import install_error_handlers
from tac_sandbox._faults import FaultRule
from tac_sandbox._settings import SandboxIdentity, SandboxSettings

# Modules with `install(ctx: SandboxContext) -> None`, one per Twilio product.
PRODUCT_MODULES: tuple[str, ...] = (
    "tac_sandbox.products.conversations",
    "tac_sandbox.products.memory",
    "tac_sandbox.products.knowledge",
    "tac_sandbox.products.studio",
    "tac_sandbox.products.calls",
    "tac_sandbox.products.intelligence",
    "tac_sandbox.phone.control",
    "tac_sandbox.phone.stream_control",
    "tac_sandbox.products.flex",
    "tac_sandbox._console",
)


def create_app(
    settings: SandboxSettings | None = None,
    *,
    products: Iterable[str] | None = None,
    database: Database | None = None,
) -> FastAPI:
    """Build a sandbox app. Nothing listens until a server runs it."""
    settings = settings or SandboxSettings()
    db = database or Database(settings.db or (default_db_path() if settings.db == "" else MEMORY))
    ctx = SandboxContext(settings=settings, db=db, identity=SandboxIdentity.load_or_create(db))
    modules = [
        importlib.import_module(m) for m in (PRODUCT_MODULES if products is None else products)
    ]
    for module in modules:
        module.install(ctx)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in ctx.startup_hooks:
            await hook()
        try:
            yield
        finally:
            for hook in reversed(ctx.shutdown_hooks):
                await hook()

    app = FastAPI(
        title="opentac sandbox",
        lifespan=lifespan,
        docs_url="/sandbox/docs",
        redoc_url=None,
        openapi_url="/sandbox/openapi.json",
    )
    app.state.sandbox = ctx
    install_error_handlers(app)
    for product, router in ctx.product_routers:
        app.include_router(router, prefix=f"/{product}", dependencies=[Depends(check_basic_auth)])
    app.include_router(_control_router(ctx))
    for router in ctx.control_routers:
        app.include_router(router, prefix="/sandbox", dependencies=[Depends(check_basic_auth)])
    products_served = {product for product, _ in ctx.product_routers}
    app.add_middleware(_ProductMiddleware, ctx=ctx, products=products_served)
    for module in modules:  # pages outside the API (the console), if a module serves any
        if hasattr(module, "mount"):
            module.mount(app, ctx)
    return app


class _ProductMiddleware:
    """Applies injected faults to, and records, every request to a product."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext, products: set[str]) -> None:
        self.app = app
        self.ctx = ctx
        self.products = products

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        product = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        if product not in self.products:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = [500]
        error = await self.ctx.faults.apply(product)
        if error is not None:
            response = JSONResponse(error.body(), status_code=error.status)
            await response(scope, receive, send)
            self.ctx.record(product, scope["method"], path, error.status, started)
            return

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.ctx.record(product, scope["method"], path, status_holder[0], started)


def _control_router(ctx: SandboxContext) -> APIRouter:
    router = APIRouter(prefix="/sandbox", tags=["control"])
    auth = [Depends(check_basic_auth)]

    @router.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness; no credentials needed."""
        return {"status": "ok", "products": sorted(p for p, _ in ctx.product_routers)}

    @router.get("/env", dependencies=auth)
    async def env() -> dict[str, str]:
        """The environment a TAC app needs to run against this sandbox."""
        return app_environment(ctx.settings, ctx.identity)

    @router.post("/reset", dependencies=auth)
    async def reset() -> dict[str, Any]:
        """Forget every conversation, record and fault; keep the identity and configuration."""
        ctx.faults.clear()
        ctx.requests.clear()
        for hook in ctx.reset_hooks:
            await hook()
        return {"status": "reset"}

    @router.get("/requests", dependencies=auth)
    async def requests(
        product: str | None = None, method: str | None = None, path_contains: str | None = None
    ) -> dict[str, Any]:
        """API requests answered, oldest first, optionally filtered."""
        records = [
            r.to_json()
            for r in ctx.requests
            if (product is None or r.product == product)
            and (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        ]
        return {"requests": records}

    @router.delete("/requests", dependencies=auth, status_code=204)
    async def clear_requests() -> None:
        ctx.requests.clear()

    @router.get("/faults", dependencies=auth)
    async def faults() -> dict[str, Any]:
        return {"faults": {p: r.model_dump() for p, r in ctx.faults.rules().items()}}

    @router.put("/faults/{product}", dependencies=auth)
    async def set_fault(product: str, rule: FaultRule) -> dict[str, Any]:
        """Inject faults into one product (``memory``, ``conversations``, ...)."""
        ctx.faults.set(product, rule)
        return {"product": product, **rule.model_dump()}

    @router.delete("/faults", dependencies=auth, status_code=204)
    async def clear_faults(request: Request) -> None:
        product = request.query_params.get("product")
        ctx.faults.clear(product)

    return router
