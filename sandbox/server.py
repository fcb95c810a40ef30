"""Run an ASGI app on loopback inside the current event loop (sandbox servers, tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        """uvicorn's loop, woken at once by ``stop()`` instead of on its next 0.1 s tick."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """On ``stop()``: close at once (uvicorn's own shutdown sleeps a fixed 0.1 s)."""
        if not self.force_exit:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for task in list(self.server_state.tasks):
            task.cancel()
        for server in self.servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    @property
    def stopping(self) -> asyncio.Event:
        if not hasattr(self, "_stopping"):
            self._stopping = asyncio.Event()
        return self._stopping


@dataclass
class RunningServer:
    server: _EmbeddedServer
    task: asyncio.Task[None]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # do not wait for idle keep-alive connections
        self.server.stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_server(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) and wait until it listens."""
    # IPPROTO_TCP: asyncio only turns Nagle off for sockets created with it (~44 ms a request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningServer(server=server, task=task, host=host, port=bound_port)


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """``async with serving(app) as url:`` runs the app for the block's duration."""
    running = await start_server(app, host=host, port=port)
    try:
        yield running.url
    finally:
        await running.stop()
