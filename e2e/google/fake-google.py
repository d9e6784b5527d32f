#!/usr/bin/env python3
"""A small Google for Bascule's end-to-end trials (Python 3.11 stdlib + cryptography).

usage: fake-google.py --port P --key-out FILE [--token-lifetime SECONDS]

Listens on 127.0.0.1:P. At start it makes an RSA key for the service account
bascule@shop-prod-4711.iam.gserviceaccount.com and writes its key file (the JSON that
`gcloud iam service-accounts keys create` gives, with token_uri pointing here) to FILE.

* POST /token — the OAuth 2.0 token endpoint, JWT-bearer grant (RFC 7523) as Google documents it
  for service accounts: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`.
  The JWT must be RS256, signed by the account's key (checked), with iss = the account,
  aud = this token URI, a scope, iat/exp at most an hour apart and exp in the future. Answers
  {"access_token", "expires_in", "token_type": "Bearer"}, or 400 {"error": "invalid_grant"}.
* GET /v1/projects/{p}/locations/{l}/clusters/{c} — GKE's clusters.get: needs a valid access
  token with the cloud-platform scope (401 otherwise), 404 NOT_FOUND for unknown clusters.
* GET /tokeninfo?access_token=T — like oauth2.googleapis.com/tokeninfo: email, scope,
  expires_in; 400 invalid_token when unknown or expired (the member's webhook calls it).
* POST /admin/cluster {"project", "location", "name", "endpoint", "caData"} — registers a
  cluster (its real endpoint and CA).

Token requests and reviews are logged on stdout without any token.
"""

import argparse
import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ACCOUNT = "bascule@shop-prod-4711.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-out", required=True)
    parser.add_argument("--token-lifetime", type=int, default=3600)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    key_id = secrets.token_hex(20)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with open(args.key_out, "w") as f:
        json.dump(
            {
                "type": "service_account",
                "project_id": "shop-prod-4711",
                "private_key_id": key_id,
                "private_key": pem,
                "client_email": ACCOUNT,
                "client_id": "1234567890",
                "auth_uri": f"{base}/auth",
                "token_uri": f"{base}/token",
            },
            f,
        )

    tokens = {}  # access token -> (email, scope, expires at)
    clusters = {}  # (project, location, name) -> cluster
    lock = threading.Lock()

    def grant(form):
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            header_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            if header.get("alg") != "RS256":
                raise ValueError("alg must be RS256")
            public.verify(
                b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        except (KeyError, ValueError) as e:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {e}"}
        now = time.time()
        if claims.get("iss") != ACCOUNT:
            return 400, {"error": "invalid_grant", "error_description": "Invalid issuer"}
        if claims.get("aud") != f"{base}/token":
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT audience"}
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if exp <= now or exp - iat > 3600 or iat > now + 60:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."}
        if not claims.get("scope"):
            return 400, {"error": "invalid_scope"}
        token = "ya29.fake-" + secrets.token_urlsafe(48)
        with lock:
            tokens[token] = (ACCOUNT, claims["scope"], now + args.token_lifetime)
        print(f"token issued to {ACCOUNT} for {args.token_lifetime} s", flush=True)
        return 200, {"access_token": token, "expires_in": args.token_lifetime, "token_type": "Bearer"}

    def lookup(token):
        with lock:
            entry = tokens.get(token)
        if entry is None or entry[2] <= time.time():
            return None
        return entry

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self):
            path = urllib.parse.urlsplit(self.path).path
            if path == "/token":
                form = dict(urllib.parse.parse_qsl(self.body().decode()))
                return self.answer(*grant(form))
            if path == "/admin/cluster":
                c = json.loads(self.body())
                with lock:
                    clusters[(c["project"], c["location"], c["name"])] = c
                return self.answer(200, {"ok": True})
            self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": path}})

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/tokeninfo":
                token = dict(urllib.parse.parse_qsl(url.query)).get("access_token", "")
                entry = lookup(token)
                if entry is None:
                    return self.answer(400, {"error": "invalid_token", "error_description": "Invalid Value"})
                email, scope, expires = entry
                return self.answer(
                    200,
                    {"email": email, "email_verified": "true", "scope": scope, "sub": "1234567890",
                     "expires_in": str(int(expires - time.time()))},
                )
            parts = url.path.strip("/").split("/")
            if len(parts) == 7 and parts[0] == "v1" and parts[1] == "projects" and parts[3] == "locations" and parts[5] == "clusters":
                auth = self.headers.get("Authorization", "")
                entry = lookup(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
                if entry is None:
                    return self.answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "Request had invalid authentication credentials."}})
                if SCOPE not in entry[1].split():
                    return self.answer(403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Request had insufficient authentication scopes."}})
                project, location, name = parts[2], parts[4], parts[6]
                with lock:
                    c = clusters.get((project, location, name))
                if c is None:
                    return self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"Not found: projects/{project}/locations/{location}/clusters/{name}."}})
                return self.answer(
                    200,
                    {"name": name, "location": location, "status": "RUNNING", "endpoint": c["endpoint"],
                     "masterAuth": {"clusterCaCertificate": c["caData"]}},
                )
            self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": url.path}})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"fake-google: on {base}, key for {ACCOUNT} in {args.key_out}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
