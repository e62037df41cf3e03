"""TAC's server for AWS deployments: ``TACAWSFastAPIServer`` (``pip install "opentac[server]"``)."""

from tac_aws.server.fastapi_server import TACAWSFastAPIServer
from tac_aws.server.middleware import ALBForwardedHeadersMiddleware

__all__ = ["ALBForwardedHeadersMiddleware", "TACAWSFastAPIServer"]
