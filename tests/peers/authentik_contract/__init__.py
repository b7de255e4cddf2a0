"""A thin Authentik contract server: the stand-in for Authentik in CI (a real one needs Python 3.14, Go and
Node 24, or its container images). Every answer is validated with authentik-client's own models before
it is sent, every request body with the client's request models, and the quirks Silver depends on are
mimicked (authentik-notes.md): the client secret in clear on GET, 204 on add_user/remove_user,
`is_active`, setup_urls, the version endpoint, role-based permissions checked per call.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from tests.peers.authentik_contract.server import ContractServer
from tests.peers.authentik_contract.state import ContractState

__all__ = ["ContractServer", "ContractState", "RunningContract", "run_contract_server"]


@dataclass
class RunningContract:
    server: ContractServer
    url: str

    @property
    def state(self) -> ContractState:
        return self.server.state


def run_contract_server() -> Iterator[RunningContract]:
    """Serve on a free loopback port in a thread (uvicorn); stop when the generator closes."""
    contract = ContractServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(contract.app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    try:
        yield RunningContract(contract, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
