"""The baseline for bench/throughput.py: one bare Starlette JSON endpoint, no middleware.

Served with the same ASGI server and the same options `silver-auth serve` uses (see
silver_auth.cli._serve), so the ratio measures the framework, middleware and service code, not the server:

    python bench/baseline_app.py --server uvicorn --port 8101
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "baseline"})


app = Starlette(routes=[Route("/baseline", hello)])


def serve(server: str, host: str, port: int, workers: int) -> None:
    # Keep these options in step with silver_auth.cli._serve.
    if server == "granian":
        from granian import Granian  # noqa: PLC0415
        from granian.constants import Interfaces  # noqa: PLC0415

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        Granian(
            "baseline_app:app",
            address=host,
            port=port,
            workers=workers,
            interface=Interfaces.ASGI,
            log_access=False,
        ).serve()
        return
    import uvicorn  # noqa: PLC0415

    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve(args.server, args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
