#!/usr/bin/env python3
"""An example Handoff bridge channel: the round trip between Handoff and a messaging
channel Handoff does not know (LINE, Telegram, Teams, your own widget).

Handoff side, configured as

    [channels.line]
    type = "bridge"
    url = "https://bridge.example.com/handoff"   # where this program listens
    secret = "whsec_…"                           # shared by both directions

- Handoff POSTs the rep's messages here as Standard Webhooks (`webhook-id`,
  `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`); this bridge verifies
  them, drops duplicates by `webhook-id`, and "delivers" them — here it keeps them in memory
  (GET /messages) where a real bridge would call its channel's API.
- A customer message on the channel (here: POST /customer {"address", "text"}) is signed the
  same way and POSTed to Handoff's `/v1/channels/<name>/inbound`.

Python 3.9+, standard library only:

    python3 bridge.py --listen 127.0.0.1:8787 --handoff-url http://127.0.0.1:8080 \
        --channel line --secret-file bridge.secret
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECS = 5 * 60
MAX_BODY = 1 << 20
SEEN_IDS_KEPT = 10_000


def secret_key(secret):
    """The HMAC key of a `whsec_<base64>` secret."""
    secret = secret.strip()
    if not secret.startswith("whsec_"):
        raise ValueError("a bridge secret starts with whsec_")
    return base64.b64decode(secret[len("whsec_"):], validate=True)


def sign(key, msg_id, timestamp, body):
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(key, headers, body, now=None):
    """True when the Standard Webhooks headers sign `body` with `key`, recently."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    now = int(time.time()) if now is None else now
    if abs(now - ts) > TOLERANCE_SECS:
        return False
    expected = sign(key, msg_id, ts, body)
    return any(hmac.compare_digest(expected, s) for s in signatures.split(" ") if s)


class Bridge:
    def __init__(self, key, handoff_url, channel):
        self.key = key
        self.inbound_url = f"{handoff_url.rstrip('/')}/v1/channels/{channel}/inbound"
        self.lock = threading.Lock()
        self.delivered = []  # what reached "the channel", in arrival order
        self.seen = {}  # webhook-id -> arrival order, for dedupe
        self.duplicates = 0  # webhooks received again (Handoff retried after a lost answer)

    def accept(self, msg_id, envelope):
        """Records one message from Handoff; False when it is a duplicate."""
        with self.lock:
            if msg_id in self.seen:
                self.duplicates += 1
                return False
            self.seen[msg_id] = len(self.seen)
            if len(self.seen) > SEEN_IDS_KEPT:
                oldest = min(self.seen, key=self.seen.get)
                del self.seen[oldest]
            self.delivered.append({"webhook_id": msg_id, **envelope})
            return True

    def send_customer_message(self, address, text, session_id=None):
        """Signs a customer message and POSTs it to Handoff; answers (status, body)."""
        message = {
            "id": f"msg_{uuid.uuid4().hex}",
            "from": address,
            "text": text,
            "at": datetime.now(timezone.utc).isoformat(),
        }
        if session_id:
            message["session_id"] = session_id
        body = json.dumps({"messages": [message]}).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        ts = int(time.time())
        request = urllib.request.Request(
            self.inbound_url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(self.key, msg_id, ts, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


def handler_for(bridge):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # no access log: bodies and addresses stay private
            pass

        def reply(self, status, payload=None):
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            """The request body; None when its length is missing, bad or too large."""
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                return None
            if not 0 <= length <= MAX_BODY:
                return None
            return self.rfile.read(length)

        def do_GET(self):
            if self.path == "/messages":
                with bridge.lock:
                    return self.reply(
                        200,
                        {"messages": list(bridge.delivered), "duplicates": bridge.duplicates},
                    )
            if self.path == "/healthz":
                return self.reply(200, {"ok": True})
            return self.reply(404, {"error": "not found"})

        def do_POST(self):
            body = self.body()
            if body is None:
                return self.reply(413, {"error": "body too large or without a valid length"})
            if self.path == "/handoff":
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not verify(bridge.key, headers, body):
                    return self.reply(401, {"error": "signature does not verify"})
                try:
                    envelope = json.loads(body)
                except ValueError:
                    return self.reply(400, {"error": "body is not JSON"})
                if not isinstance(envelope, dict):
                    return self.reply(400, {"error": "body is not a JSON object"})
                msg_id = headers["webhook-id"]
                if bridge.accept(msg_id, envelope):
                    # Never the text or the customer's address: logs stay free of personal data.
                    print(f"delivered {envelope.get('type')} {msg_id}", flush=True)
                return self.reply(204)
            if self.path == "/customer":
                try:
                    message = json.loads(body)
                    address, text = message["address"], message["text"]
                except (ValueError, KeyError, TypeError):
                    return self.reply(400, {"error": 'send {"address": "…", "text": "…"}'})
                status, answer = bridge.send_customer_message(
                    address, text, message.get("session_id")
                )
                return self.reply(200, {"handoff_status": status, "handoff_body": answer})
            return self.reply(404, {"error": "not found"})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8787")
    parser.add_argument("--handoff-url", default="http://127.0.0.1:8080")
    parser.add_argument("--channel", default="line")
    parser.add_argument("--secret-file", help="a file holding the whsec_ secret")
    args = parser.parse_args()
    secret = os.environ.get("BRIDGE_SECRET")
    if args.secret_file:
        with open(args.secret_file, encoding="utf-8") as f:
            secret = f.read()
    if not secret:
        sys.exit("set BRIDGE_SECRET or --secret-file to the channel's whsec_ secret")
    bridge = Bridge(secret_key(secret), args.handoff_url, args.channel)
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), handler_for(bridge))
    print(f"bridge listening on http://{host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
