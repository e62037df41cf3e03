"""What every product client shares: its :class:`TwilioHTTP`, who closes it, and parsing."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from tac.context._http import TwilioHTTP, parse_json_object
from tac.context.errors import InvalidResponseError
from tac.models._base import first_error

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound="ProductClient")


def validate_body(model: type[M], body: Any, response: httpx.Response) -> M:
    """``model`` from a 2xx body; a shape mismatch is an :class:`InvalidResponseError`."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        where, message = first_error(exc, "body")
        raise InvalidResponseError(
            f"unexpected {model.__name__} shape: {where}: {message}",
            status=response.status_code,
            method=response.request.method,
            url=str(response.request.url),
            headers=dict(response.headers),
        ) from exc


def parse_model(model: type[M], response: httpx.Response) -> M:
    """The response's JSON object as ``model`` (:class:`InvalidResponseError` otherwise)."""
    return validate_body(model, parse_json_object(response), response)


class ProductClient:
    """Holds a :class:`TwilioHTTP`: a shared one (``http=``) or its own, built from credentials.

    :meth:`aclose` closes the transport only when this client built it.
    """

    _product: str = ""

    def __init__(
        self,
        *,
        http: TwilioHTTP | None,
        api_key: str | None,
        api_secret: str | None,
        region: str | None,
    ) -> None:
        if http is not None:
            if not isinstance(http, TwilioHTTP):
                raise TypeError(f"http must be a TwilioHTTP, got {type(http).__name__}")
            if api_key is not None or api_secret is not None:
                raise ValueError("pass either http= or api_key/api_secret, not both")
            self._http = http
            self._owns_http = False
            return
        if not api_key or not api_secret:
            raise ValueError(
                f"{type(self).__name__} needs http=TwilioHTTP(...) or api_key and api_secret"
            )
        self._http = TwilioHTTP(api_key=api_key, api_secret=api_secret, region=region)
        self._owns_http = True

    @property
    def http(self) -> TwilioHTTP:
        """The transport this client sends through."""
        return self._http

    @property
    def base_url(self) -> str:
        """This product's base URL (region and ``api_base_url`` applied)."""
        return self._http.base_url(self._product)

    async def _collect(
        self,
        path: str,
        key: str,
        model: type[M],
        *,
        params: dict[str, Any] | None = None,
        page_size: int | None = None,
        max_pages: int = 100,
        limit: int | None = None,
    ) -> list[M]:
        """The items under ``key`` of every page of a list endpoint, at most ``limit``."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if page_size is None and limit is not None:
            page_size = min(limit, 1000)
        results: list[M] = []
        async for response, page in self._http.iter_pages(
            self._product, path, params=params, page_size=page_size, max_pages=max_pages
        ):
            raw = page.get(key)
            if raw is None:
                raw = []
            if not isinstance(raw, list):
                raise InvalidResponseError(
                    f"expected a list under {key!r}",
                    status=response.status_code,
                    method=response.request.method,
                    url=str(response.request.url),
                    headers=dict(response.headers),
                )
            results.extend(validate_body(model, item, response) for item in raw)
            if limit is not None and len(results) >= limit:
                return results[:limit]
        return results

    async def aclose(self) -> None:
        """Close the transport if this client created it (a shared one stays open)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
