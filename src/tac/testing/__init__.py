"""Test doubles for TAC applications."""

from tac.testing.fake_model import (
    FakeModel,
    FakeModelError,
    ModelRequest,
    UnconsumedModelSteps,
    UnexpectedModelRequest,
)

__all__ = [
    "FakeModel",
    "FakeModelError",
    "ModelRequest",
    "UnconsumedModelSteps",
    "UnexpectedModelRequest",
]
