"""Errors particular to the billing portal's API."""

from __future__ import annotations

from services.errors import UpstreamError


class SyncAlreadyRunning(UpstreamError):
    """A full sync of the integration is already queued or running (HTTP 409).

    ``run_id`` is the portal's run in progress: follow it instead of starting another.
    """

    user_message = "A full sync of this integration is already running in the portal."

    def __init__(
        self,
        message: str,
        *,
        run_id: str,
        system: str = "portal",
        status: int | None = 409,
        code: str | None = "sync_already_running",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status, code=code, request_id=request_id)
        self.run_id = run_id
