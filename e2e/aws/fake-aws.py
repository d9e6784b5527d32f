#!/usr/bin/env python3
"""AWS for Bascule's end-to-end trials: moto, and a token authenticator webhook like EKS's.

usage: fake-aws.py --moto-port P --webhook-port Q [--google-tokeninfo URL]

Both listen on 127.0.0.1 only.

* moto 5 (its own server, run in this process so that the trial can point moto's invented EKS
  endpoint and CA at a real member) on port P.
* A Kubernetes token webhook (authentication.k8s.io/v1 TokenReview) on port Q, at /NAME for the
  member cluster NAME (e2e/cluster up --token-webhook). It does what the EKS authenticator
  (aws-iam-authenticator) does with a `k8s-aws-v1.` token:
    1. decode it into a presigned STS GetCallerIdentity URL; refuse any other host, action,
       version or parameter, X-Amz-Expires over 60, a date more than 15 minutes old, and a
       signature that does not cover the x-k8s-aws-id header;
    2. check the SigV4 signature with x-k8s-aws-id = NAME, as STS does. moto 5.2.1 neither
       checks query-string signatures nor reads the key from X-Amz-Credential, so this step
       uses the key's secret from moto's own IAM/STS state;
    3. call the presigned URL against moto and take the caller's ARN from GetCallerIdentity
       (the URL's credential and signature restated in an Authorization header: moto routes
       requests and identifies callers only from that header);
    4. answer with username = the ARN, an assumed role's session reduced to the role ARN
       (arn:aws:iam::ACCOUNT:role/NAME), as an EKS access entry for that role would.
  Other tokens go to --google-tokeninfo if given (GKE's side, e2e/google/fake-google.py).
* POST /admin/eks-cluster {"region", "name", "endpoint", "caData"}: the cluster moto created
  answers DescribeCluster with that endpoint and CA.

Each review is logged on stdout (cluster, outcome, username or reason); tokens never are.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

PREFIX = "k8s-aws-v1."
ALLOWED = {
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
}


class Refused(Exception):
    pass


def secret_of(access_key_id):
    """(secret, session token) of a key moto issued: an IAM user's key or an assumed role's."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account in list(iam_backends.keys()):
        for partition in list(iam_backends[account].keys()):
            for user in iam_backends[account][partition].users.values():
                for key in user.access_keys:
                    if key.access_key_id == access_key_id and key.status == "Active":
                        return key.secret_access_key, None
    for account in list(sts_backends.keys()):
        for partition in list(sts_backends[account].keys()):
            for role in sts_backends[account][partition].assumed_roles:
                if role.access_key_id == access_key_id:
                    return role.secret_access_key, role.session_token
    raise Refused("unknown access key")


def quote(s):
    return urllib.parse.quote(s, safe="-_.~")


def verify_signature(url, cluster):
    parsed = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    params = dict(pairs)
    credential = params["X-Amz-Credential"].split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        raise Refused("bad X-Amz-Credential scope")
    access_key_id, day, region = credential[0], credential[1], credential[2]
    secret, session_token = secret_of(access_key_id)
    if session_token is not None and params.get("X-Amz-Security-Token") != session_token:
        raise Refused("wrong session token")
    signed = params["X-Amz-SignedHeaders"].split(";")
    values = {"host": parsed.netloc, "x-k8s-aws-id": cluster}
    if any(h not in values for h in signed):
        raise Refused("signed headers other than host and x-k8s-aws-id")
    query = "&".join(
        f"{quote(k)}={quote(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    headers = "".join(f"{h}:{values[h]}\n" for h in signed)
    canonical = "\n".join(
        ["GET", parsed.path or "/", query, headers, ";".join(signed), hashlib.sha256(b"").hexdigest()]
    )
    scope = f"{day}/{region}/sts/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (day, region, "sts", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise Refused("signature does not match (SignatureDoesNotMatch)")
    return access_key_id


def review_aws(token, cluster, sts_base):
    raw = token[len(PREFIX):]
    try:
        url = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except Exception:
        raise Refused("not base64url")
    parsed = urllib.parse.urlsplit(url)
    base = urllib.parse.urlsplit(sts_base)
    if (parsed.scheme, parsed.netloc) != (base.scheme, base.netloc) or parsed.path not in ("", "/"):
        raise Refused(f"not an STS URL this authenticator trusts: {parsed.scheme}://{parsed.netloc}")
    pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs) or set(params) - ALLOWED:
        raise Refused("unexpected or repeated query parameters")
    if params.get("Action") != "GetCallerIdentity" or params.get("Version") != "2011-06-15":
        raise Refused("not a GetCallerIdentity call")
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise Refused("not SigV4")
    if not 0 <= int(params.get("X-Amz-Expires", "-1")) <= 60:
        raise Refused("X-Amz-Expires must be between 0 and 60")
    signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    age = datetime.datetime.now(datetime.timezone.utc) - signed_at
    if age > datetime.timedelta(minutes=15) or age < datetime.timedelta(minutes=-1):
        raise Refused(f"token signed {int(age.total_seconds())} s ago: expired")
    if "x-k8s-aws-id" not in params.get("X-Amz-SignedHeaders", "").split(";"):
        raise Refused("x-k8s-aws-id is not signed")
    access_key_id = verify_signature(url, cluster)

    # moto routes a request to STS, and finds the caller's key, only from an Authorization
    # header: restate the URL's own signature there (same credential, same signature).
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={params['X-Amz-Credential']}, "
        f"SignedHeaders={params['X-Amz-SignedHeaders']}, Signature={params['X-Amz-Signature']}"
    )
    call = urllib.request.Request(
        url, headers={"x-k8s-aws-id": cluster, "Authorization": authorization}
    )
    try:
        body = urllib.request.urlopen(call, timeout=5).read()
    except urllib.error.HTTPError as e:
        raise Refused(f"STS answered {e.code}")
    root = ET.fromstring(body)
    found = {el.tag.split("}")[-1]: el.text for el in root.iter()}
    arn, user_id, account = found.get("Arn"), found.get("UserId"), found.get("Account")
    if not arn:
        raise Refused("STS returned no ARN")
    parts = arn.split(":")
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        username = f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    else:
        username = arn
    return {
        "username": username,
        "uid": f"aws-iam-authenticator:{account}:{user_id}",
        "groups": [],
        "extra": {"arn": [arn], "accessKeyId": [access_key_id]},
    }


def review_google(token, cluster, tokeninfo):
    call = urllib.request.Request(f"{tokeninfo}?access_token={quote(token)}")
    try:
        info = json.loads(urllib.request.urlopen(call, timeout=5).read())
    except urllib.error.HTTPError as e:
        raise Refused(f"Google tokeninfo answered {e.code}")
    email = info.get("email")
    if not email:
        raise Refused("Google token without an email")
    if "https://www.googleapis.com/auth/cloud-platform" not in info.get("scope", "").split():
        raise Refused("Google token without the cloud-platform scope")
    return {"username": email, "uid": info.get("sub", email), "groups": []}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--moto-port", type=int, required=True)
    parser.add_argument("--webhook-port", type=int, required=True)
    parser.add_argument("--google-tokeninfo")
    args = parser.parse_args()

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()
    sts_base = f"http://127.0.0.1:{args.moto_port}"
    lock = threading.Lock()

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

        def do_POST(self):
            data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if urllib.parse.urlsplit(self.path).path == "/admin/eks-cluster":
                from moto.eks.models import eks_backends

                with lock:
                    for account in list(eks_backends.keys()):
                        clusters = eks_backends[account][data["region"]].clusters
                        if data["name"] in clusters:
                            c = clusters[data["name"]]
                            c.endpoint = data["endpoint"]
                            c.certificate_authority = {"data": data["caData"]}
                            return self.answer(200, {"ok": True})
                return self.answer(404, {"error": "no such cluster in moto"})
            cluster = urllib.parse.urlsplit(self.path).path.strip("/")
            token = data.get("spec", {}).get("token", "")
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
            try:
                if token.startswith(PREFIX):
                    user = review_aws(token, cluster, sts_base)
                elif args.google_tokeninfo:
                    user = review_google(token, cluster, args.google_tokeninfo)
                else:
                    raise Refused("not a k8s-aws-v1. token")
                review["status"] = {"authenticated": True, "user": user}
                print(f"review cluster={cluster} authenticated username={user['username']}", flush=True)
            except (Refused, KeyError, ValueError) as e:
                review["status"] = {"authenticated": False, "error": str(e)}
                print(f"review cluster={cluster} refused reason={e}", flush=True)
            self.answer(200, review)

    server = ThreadingHTTPServer(("127.0.0.1", args.webhook_port), Handler)
    print(f"fake-aws: moto on {sts_base}, webhook on http://127.0.0.1:{args.webhook_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
