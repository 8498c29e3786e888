#!/usr/bin/env python3
"""A small Bearer token server for the registry tests (the Docker token
auth flow): docker-registry's `auth: token:` points its realm here.

    token_server.py PORT KEY.pem CERT.pem USER:PASSWORD LOGFILE

GET /token?service=S&scope=repository:NAME:ACTIONS...  answers
{"token": JWT, "access_token": JWT, "expires_in": 300}.  The JWT is RS256,
signed with `openssl dgst -sha256 -sign KEY.pem` (python's standard library
has no RSA), and carries CERT.pem in its x5c header, which the registry
checks against its rootcertbundle (the same CERT.pem).

Policy: with the right Basic credentials every requested action is granted;
anonymous callers get "pull" on repositories under public/ only; wrong
credentials get 401.  Each request is logged to LOGFILE as one line
"user|anonymous scope..." (never the password)."""
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

PORT = int(sys.argv[1])
KEY, CERT = sys.argv[2], sys.argv[3]
USER, PASSWORD = sys.argv[4].split(":", 1)
LOG = sys.argv[5]
lock = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64():
    pem = open(CERT).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())


X5C = cert_der_b64()


def sign(data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def make_jwt(sub, service, access):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    claims = {"iss": "kiln-token-server", "sub": sub, "aud": service, "exp": now + 300,
              "nbf": now - 10, "iat": now, "jti": b64url(os.urandom(12)), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64url(sign(signing_input))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        q = urllib.parse.parse_qs(url.query)
        service = q.get("service", [""])[0]
        scopes = []
        for s in q.get("scope", []):
            scopes.extend(s.split(" "))
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, p = base64.b64decode(auth[6:]).decode().split(":", 1)
            except Exception:
                u, p = "", None
            if u != USER or p != PASSWORD:
                with lock, open(LOG, "a") as f:
                    f.write("denied %s\n" % " ".join(scopes))
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "bad credentials"}]},
                                  {"WWW-Authenticate": 'Basic realm="kiln-token"'})
            user = u
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
            if user is None:
                actions = [a for a in actions if a == "pull" and name.startswith("public/")]
            if actions:
                access.append({"type": "repository", "name": name, "actions": actions})
        with lock, open(LOG, "a") as f:
            f.write("%s %s\n" % (user or "anonymous", " ".join(scopes)))
        tok = make_jwt(user or "", service, access)
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
