#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the registry tests: it sits between
kiln and docker-registry (kiln talks to it as if it were the registry) and
spoils chosen responses.

    fault_proxy.py PORT UPSTREAM_HOST:PORT

Control (plain GETs to the proxy itself):
    /__fault/set?mode=M&count=N&match=S[&arg=X][&norange=1]
        the next N requests whose path contains S (default "/blobs/sha256:")
        get fault M; N=-1 means every one.  Modes:
          reset     close the connection (TCP RST) without an answer
          truncate  headers with the full Content-Length, half the body, close
          500       HTTP 500 with a registry-style JSON error
          429       HTTP 429 with Retry-After: X (default 1)
          stall     headers and half the body, then nothing for X s (default 30)
          corrupt   the whole body with one byte changed
          slow      the body at X bytes per second (default 200000)
          pad       X spaces (default 5000000) after the body
          redirect  307 to the same path on UPSTREAM (another origin)
          none      pass everything through
        norange=1 also drops Range from requests (a server that ignores it)
    /__fault/stats  JSON {"faults": injected so far, "requests": proxied}
Everything else is forwarded to UPSTREAM unchanged (Range included)."""
import http.client
import http.server
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse

PORT = int(sys.argv[1])
UP_HOST, UP_PORT = sys.argv[2].rsplit(":", 1)
state = {"mode": "none", "count": 0, "match": "/blobs/sha256:", "arg": None,
         "faults": 0, "requests": 0, "norange": False, "ranges_dropped": 0}
lock = threading.Lock()
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailers", "transfer-encoding", "upgrade", "content-length"}


def take_fault(path):
    with lock:
        state["requests"] += 1
        if state["mode"] == "none" or state["count"] == 0 or state["match"] not in path:
            return None, None
        if state["count"] > 0:
            state["count"] -= 1
        state["faults"] += 1
        return state["mode"], state["arg"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def control(self):
        url = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        with lock:
            if url.path == "/__fault/set":
                state["mode"] = q.get("mode", "none")
                state["count"] = int(q.get("count", "1"))
                state["match"] = q.get("match", "/blobs/sha256:")
                state["arg"] = q.get("arg")
                state["faults"] = 0
                state["norange"] = q.get("norange") == "1"
                state["ranges_dropped"] = 0
            body = json.dumps({"faults": state["faults"], "requests": state["requests"],
                               "ranges_dropped": state["ranges_dropped"],
                               "mode": state["mode"], "count": state["count"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def error(self, code, extra):
        body = json.dumps({"errors": [{"code": "UNAVAILABLE" if code != 429 else "TOOMANYREQUESTS",
                                       "message": "injected fault %d" % code}]}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forward(self):
        if self.path.startswith("/__fault/"):
            return self.control()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        mode, arg = take_fault(self.path)
        if mode == "reset":
            return self.reset()
        if mode == "500":
            return self.error(500, {})
        if mode == "429":
            return self.error(429, {"Retry-After": arg or "1"})
        if mode == "redirect":
            # As registries do with blob storage: another origin serves it.
            self.send_response(307)
            self.send_header("Location", "http://%s:%s%s" % (UP_HOST, UP_PORT, self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if state["norange"] and "Range" in headers:
            del headers["Range"]  # a server that ignores Range answers 200 with everything
            with lock:
                state["ranges_dropped"] += 1
        conn = http.client.HTTPConnection(UP_HOST, int(UP_PORT), timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if mode == "pad" and self.command != "HEAD":
            data += b" " * int(arg or 5000000)  # still valid JSON, just big
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        length = r.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        conn.close()
        if self.command == "HEAD":
            return
        if mode == "truncate" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self.reset()
        if mode == "stall" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            time.sleep(float(arg or 30))
            return self.reset()
        if mode == "corrupt" and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        if mode == "slow":
            rate = int(arg or 200000)
            step = max(rate // 20, 1)
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up (resets, kill -9) are the point here


Server(("127.0.0.1", PORT), Handler).serve_forever()
