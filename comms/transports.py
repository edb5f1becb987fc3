"""Transports: how a finished message leaves (SMTP, HTTP API, .eml files, memory)."""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """Sends finished bytes; raises TemporaryFailure, PermanentFailure or PolicyRejection."""

    def send(self, envelope_from: str, recipient: str, data: bytes, key: str) -> None:
        """Deliver `data` to one recipient; `key` is the idempotency key (stable per delivery)."""

    def close(self) -> None:
        """Release connections."""
