#!/usr/bin/env python3
"""Loopback stand-in for the AWS endpoints the credential providers call:
EC2 IMDSv2, the ECS/EKS container endpoint, STS (AssumeRole with a real
SigV4 check, AssumeRoleWithWebIdentity) and SSO GetRoleCredentials.

Usage: aws_test_server.py [--host 127.0.0.1|::1] [--port 0]
                          [--tls-cert cert.pem --tls-key key.pem]
Prints "PORT <n>" on stdout once listening. Only loopback addresses.

Routes (the provider tests point their endpoint variables here):
  PUT  /latest/api/token                                  imds_token
  GET  /latest/meta-data/iam/security-credentials/        imds_role
  GET  /latest/meta-data/iam/security-credentials/<role>  imds_creds
  GET  /ecs/...                                           ecs
  POST /  (or /sts/...)  Action=AssumeRole                sts_assume_role
                         Action=AssumeRoleWithWebIdentity sts_web_identity
  GET  /federation/credentials                            sso

Control plane (JSON):
  POST /_control/config   replace the configuration (see DEFAULTS) and
                          reset the counters
  GET  /_control/stats    {"counts": {route: n}, "last": {route: request}}
  POST /_control/shutdown stop the server

Faults, per route, in config["faults"][route] (applied to the first
"times" requests, all when "times" is absent):
  status        answer with this HTTP status (body: route's error format)
  body          raw body to send instead of the normal one
  content_type  content type to send
  delay         seconds to sleep before answering (client timeouts)
  slow_body     seconds to sleep between 16-byte chunks of the body
  truncate      announce a Content-Length 100 bytes longer, then close
  expires_in    seconds until the returned credentials expire (<0: expired)
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse

DEFAULTS = {
    "access_key_id": "ASIATESTACCESSKEY",
    "secret_access_key": "test/secret+access/key",
    "session_token": "test-session-token",
    "expires_in": 3600,
    "imds_role": "test-role",
    # STS: the credentials AssumeRole must be signed with
    "sts_source_access_key_id": "AKIDSOURCE",
    "sts_source_secret_access_key": "source-secret",
    "sts_source_session_token": None,
    # ECS: the Authorization header value required (None: not checked)
    "ecs_authorization": None,
    # SSO: the bearer token required
    "sso_token": "sso-access-token",
    "faults": {},
}

lock = threading.Lock()
config = json.loads(json.dumps(DEFAULTS))
counts = {}
last = {}
imds_tokens = set()
fault_uses = {}


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def hmac_sha256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify_sigv4(method, path, headers, body, access_key_id, secret, session_token):
    """Recomputes the SigV4 header signature; returns None or the problem."""
    auth = headers.get("Authorization")
    if not auth:
        return "no Authorization header"
    prefix = "AWS4-HMAC-SHA256 "
    if not auth.startswith(prefix):
        return "Authorization does not start with AWS4-HMAC-SHA256"
    parts = {}
    for item in auth[len(prefix):].split(","):
        k, sep, v = item.strip().partition("=")
        if not sep:
            return "malformed Authorization component %r" % item
        parts[k] = v
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        return "Authorization components are %s" % sorted(parts)
    cred = parts["Credential"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request" or cred[3] != "sts":
        return "malformed credential scope %s" % "/".join(cred[1:])
    if cred[0] != access_key_id:
        return "signed with access key %s, expected %s" % (cred[0], access_key_id)
    amz_date = headers.get("X-Amz-Date", "")
    if len(amz_date) != 16 or not amz_date.startswith(cred[1]):
        return "X-Amz-Date %r does not match the scope date" % amz_date
    signed = parts["SignedHeaders"].split(";")
    if signed != sorted(signed):
        return "SignedHeaders not sorted"
    for need in ("host", "x-amz-date"):
        if need not in signed:
            return "%s is not signed" % need
    if session_token is not None:
        if headers.get("X-Amz-Security-Token") != session_token:
            return "X-Amz-Security-Token missing or wrong"
        if "x-amz-security-token" not in signed:
            return "x-amz-security-token is not signed"
    elif "X-Amz-Security-Token" in headers:
        return "unexpected X-Amz-Security-Token"
    if not all(c in "0123456789abcdef" for c in parts["Signature"]) or \
            len(parts["Signature"]) != 64:
        return "Signature is not 64 lowercase hex digits"
    canon_headers = ""
    for name in signed:
        v = headers.get(name)
        if v is None:
            return "signed header %s was not sent" % name
        canon_headers += "%s:%s\n" % (name, " ".join(v.strip().split()))
    creq = "\n".join([method, path or "/", "", canon_headers, ";".join(signed),
                      sha256_hex(body)])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(cred[1:]),
                     sha256_hex(creq.encode())])
    key = ("AWS4" + secret).encode()
    for p in cred[1:]:
        key = hmac_sha256(key, p)
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts["Signature"]):
        return "signature mismatch"
    return None


def sts_error(code, message, status=403):
    xml = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
           "<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
           "<RequestId>r-1</RequestId></ErrorResponse>" % (code, message))
    return status, "text/xml", xml.encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "aws-test-server"

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing --------------------------------------------------------
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def fault(self, route):
        f = config["faults"].get(route)
        if not f:
            return {}
        used = fault_uses.get(route, 0)
        if "times" in f and used >= f["times"]:
            return {}
        fault_uses[route] = used + 1
        return f

    def send(self, status, ctype, payload, fault):
        if "status" in fault:
            status = fault["status"]
        if "body" in fault:
            payload = fault["body"].encode()
        if "content_type" in fault:
            ctype = fault["content_type"]
        try:
            if fault.get("delay"):
                time.sleep(fault["delay"])
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            length = len(payload) + (100 if fault.get("truncate") else 0)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if fault.get("slow_body"):
                for i in range(0, len(payload), 16):
                    self.wfile.write(payload[i:i + 16])
                    self.wfile.flush()
                    time.sleep(fault["slow_body"])
            else:
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def record(self, route, body=b""):
        with lock:
            counts[route] = counts.get(route, 0) + 1
            last[route] = {
                "method": self.command,
                "path": self.path,
                "headers": {k: v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            return self.fault(route)

    def creds(self, fault):
        exp = time.time() + fault.get("expires_in", config["expires_in"])
        return (config["access_key_id"], config["secret_access_key"],
                config["session_token"], exp)

    # -- verbs -----------------------------------------------------------
    def do_PUT(self):
        body = self.body()
        if self.path == "/latest/api/token":
            fault = self.record("imds_token", body)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.send(400, "text/plain", b"bad ttl", fault)
            tok = "imds-token-%d" % (len(imds_tokens) + 1)
            with lock:
                imds_tokens.add(tok)
            return self.send(200, "text/plain", tok.encode(), fault)
        self.send(404, "text/plain", b"not found", {})

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_control/stats":
            with lock:
                data = json.dumps({"counts": counts, "last": last}).encode()
            return self.send(200, "application/json", data, {})
        prefix = "/latest/meta-data/iam/security-credentials/"
        if path.startswith(prefix):
            role = path[len(prefix):]
            route = "imds_creds" if role else "imds_role"
            fault = self.record(route)
            if self.headers.get("X-aws-ec2-metadata-token") not in imds_tokens:
                return self.send(401, "text/plain", b"", fault)
            if not role:
                return self.send(200, "text/plain", config["imds_role"].encode(), fault)
            if role != config["imds_role"]:
                return self.send(404, "text/plain", b"not found", fault)
            akid, secret, tok, exp = self.creds(fault)
            doc = {"Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC",
                   "AccessKeyId": akid, "SecretAccessKey": secret, "Token": tok,
                   "Expiration": iso(exp)}
            return self.send(200, "text/plain", json.dumps(doc).encode(), fault)
        if path.startswith("/ecs/"):
            fault = self.record("ecs")
            want = config["ecs_authorization"]
            if want is not None and self.headers.get("Authorization") != want:
                return self.send(401, "application/json",
                                 b'{"code":"AccessDenied","message":"bad token"}', fault)
            akid, secret, tok, exp = self.creds(fault)
            doc = {"AccessKeyId": akid, "SecretAccessKey": secret, "Token": tok,
                   "Expiration": iso(exp), "RoleArn": "arn:aws:iam::123456789012:role/ecs"}
            if fault.get("status", 200) >= 400 and "body" not in fault:
                doc = {"code": "InternalError", "message": "injected failure"}
            return self.send(200, "application/json", json.dumps(doc).encode(), fault)
        if path == "/federation/credentials":
            fault = self.record("sso")
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if self.headers.get("x-amz-sso_bearer_token") != config["sso_token"]:
                return self.send(401, "application/json",
                                 b'{"message":"Session token not found or invalid"}', fault)
            if not q.get("account_id") or not q.get("role_name"):
                return self.send(400, "application/json",
                                 b'{"message":"missing account_id or role_name"}', fault)
            akid, secret, tok, exp = self.creds(fault)
            doc = {"roleCredentials": {"accessKeyId": akid, "secretAccessKey": secret,
                                       "sessionToken": tok, "expiration": int(exp * 1000)}}
            if fault.get("status", 200) >= 400 and "body" not in fault:
                doc = {"message": "injected failure"}
            return self.send(200, "application/json", json.dumps(doc).encode(), fault)
        self.send(404, "text/plain", b"not found", {})

    def do_POST(self):
        global config
        body = self.body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_control/config":
            new = json.loads(json.dumps(DEFAULTS))
            new.update(json.loads(body or b"{}"))
            with lock:
                config = new
                counts.clear()
                last.clear()
                fault_uses.clear()
            return self.send(200, "application/json", b"{}", {})
        if path == "/_control/shutdown":
            self.send(200, "application/json", b"{}", {})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return
        if path == "/" or path.startswith("/sts"):
            form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
            action = form.get("Action", [""])[0]
            route = {"AssumeRole": "sts_assume_role",
                     "AssumeRoleWithWebIdentity": "sts_web_identity"}.get(action, "sts")
            fault = self.record(route, body)
            if form.get("Version", [""])[0] != "2011-06-15":
                return self.send(*sts_error("InvalidAction", "bad Version", 400), fault)
            if not form.get("RoleArn") or not form.get("RoleSessionName"):
                return self.send(*sts_error("ValidationError", "missing RoleArn", 400), fault)
            if not self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"):
                return self.send(*sts_error("InvalidAction", "bad content type", 400), fault)
            if route == "sts_assume_role":
                problem = verify_sigv4("POST", path, self.headers, body,
                                       config["sts_source_access_key_id"],
                                       config["sts_source_secret_access_key"],
                                       config["sts_source_session_token"])
                if problem:
                    return self.send(*sts_error("SignatureDoesNotMatch", problem), fault)
                result = "AssumeRoleResult"
            elif route == "sts_web_identity":
                if "Authorization" in self.headers:
                    return self.send(*sts_error("InvalidAction", "signed web identity"),
                                     fault)
                if form.get("WebIdentityToken", [""])[0] != config.get("web_identity_token",
                                                                        "web-identity-jwt"):
                    return self.send(*sts_error("InvalidIdentityToken",
                                                "Couldn't verify the token", 400), fault)
                result = "AssumeRoleWithWebIdentityResult"
            else:
                return self.send(*sts_error("InvalidAction", "unknown action", 400), fault)
            if fault.get("status", 200) >= 400 and "body" not in fault:
                st, ct, payload = sts_error("InternalFailure", "injected failure",
                                            fault["status"])
                return self.send(st, ct, payload, fault)
            akid, secret, tok, exp = self.creds(fault)
            op = result[:-len("Result")]
            xml = ('<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                   "<%s><Credentials><AccessKeyId>%s</AccessKeyId>"
                   "<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                   "<Expiration>%s</Expiration></Credentials>"
                   "<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA:x</AssumedRoleId>"
                   "</AssumedRoleUser></%s><ResponseMetadata><RequestId>r-1</RequestId>"
                   "</ResponseMetadata></%sResponse>" % (
                       op, result, akid, secret, tok, iso(exp),
                       form["RoleArn"][0], form["RoleSessionName"][0], result, op))
            return self.send(200, "text/xml", xml.encode(), fault)
        self.send(404, "text/plain", b"not found", {})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
    ap.add_argument("--tls-key", help="and this PEM private key")
    args = ap.parse_args()
    if args.host == "::1":
        Server.address_family = socket.AF_INET6
    srv = Server((args.host, args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
