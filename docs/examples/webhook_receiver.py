"""A receiver for SEQN Auth webhooks, verified with the Standard Webhooks library (docs/webhooks.md).

    pip install standardwebhooks              # and cryptography, for an ed25519 endpoint
    WEBHOOK_SECRET=whsec_... python webhook_receiver.py        # an `hmac` endpoint (v1 signatures)
    WEBHOOK_PUBLIC_KEY=whpk_... python webhook_receiver.py     # an `ed25519` endpoint (v1a signatures)

It listens on 127.0.0.1:$PORT (8080; 0 picks a free port) at /webhooks. Each delivery is verified
over the raw body (signature, and a timestamp at most 5 minutes off), deduplicated on `webhook-id`,
queued, and answered 204 at once; a worker thread does the processing, so a slow job never makes
SEQN Auth time out and retry. Only the standard library besides the verifier: use your framework's
request object the same way (the raw body bytes, not re-serialised JSON).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 1024 * 1024

SECRET = os.environ.get("WEBHOOK_SECRET")
PUBLIC_KEY = os.environ.get("WEBHOOK_PUBLIC_KEY")

jobs: queue.Queue[dict[str, Any]] = queue.Queue()
seen: set[str] = set()
"""Ids already taken. Keep them in your database in production (a unique column, written in the
transaction that applies the event), so a retry after a crash or a second server is caught too."""
seen_lock = threading.Lock()


def log(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the example logs to stdout


def verify_ed25519(public_key: str, body: bytes, headers: dict[str, str]) -> Any:
    """A `v1a,` signature: Ed25519 over `{webhook-id}.{webhook-timestamp}.{body}`; the `whpk_` key is
    base64 of the raw 32-byte public key."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: PLC0415

    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not (msg_id and timestamp.isdigit() and headers.get("webhook-signature")):
        raise WebhookVerificationError("missing or malformed webhook headers")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("message timestamp too old or too new")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for versioned in headers["webhook-signature"].split(" "):
        version, _, signature = versioned.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
        except (InvalidSignature, ValueError):
            continue
        return json.loads(body)
    raise WebhookVerificationError("no matching v1a signature")


def verify(body: bytes, headers: dict[str, str]) -> Any:
    if PUBLIC_KEY:
        return verify_ed25519(PUBLIC_KEY, body, headers)
    assert SECRET is not None
    # Checks every `v1,` signature in the header (two during a secret rotation's overlap) and rejects a
    # timestamp more than 5 minutes off.
    return Webhook(SECRET).verify(body, headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.path != "/webhooks":
            return self.answer(404)
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            return self.answer(413)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        msg_id = headers.get("webhook-id", "")
        try:
            event = verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            log(f"rejected {msg_id}: {exc}")
            return self.answer(400)
        with seen_lock:
            duplicate = msg_id in seen
            seen.add(msg_id)
        if duplicate:  # a retry of a message already taken (at-least-once delivery): answer 2xx again
            log(f"duplicate {msg_id}")
            return self.answer(204)
        jobs.put({"id": msg_id, **event})
        self.answer(204)  # fast: the work happens on the worker thread

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


def work() -> None:
    while True:
        event = jobs.get()
        # Your processing: e.g. on `user.deleted`, remove the user's data. `event["version"]` is the payload
        # version; ignore types you do not know (new ones may be added).
        log(f"processed {event['id']} {event['type']}")


def main() -> None:
    if not SECRET and not PUBLIC_KEY:
        sys.exit("set WEBHOOK_SECRET (whsec_...) or WEBHOOK_PUBLIC_KEY (whpk_...)")
    threading.Thread(target=work, daemon=True).start()
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, int(os.environ.get("PORT", "8080"))), Handler)
    log(f"listening on http://{host}:{server.server_address[1]}/webhooks")
    server.serve_forever()


if __name__ == "__main__":
    main()
