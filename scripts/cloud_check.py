"""Requests through the execute-api URL of the deployed stack (scripts/cloud-test): every sample
event in events/ replayed as an HTTP request, then an end-to-end subset. Standard library only.

    python3 cloud_check.py --api URL --demo demo.json --stack stack.json --events events/

Prints one line per check (never a key or token), then `cloud: N passed, M failed`; exits 1 on
any failure. Every route the stack deployed must be reached by at least one passing check (a
route's sample event counts), and every answer must come from a function (x-request-id).
"""

import argparse
import base64
import glob
import http.client
import json
import os
import re
import sys
import urllib.parse

FIXTURE_KEY = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW"
FIXTURE_SESSION = "ws_000000000000000000000000"
SECRETS = re.compile(r"hatch_(live|test|pk)_[0-9A-Za-z]{38}|eyJ[0-9A-Za-z_-]+\.[0-9A-Za-z_.-]+")
BROWSER_ROUTES = {  # path -> the methods a preflight must allow (API.md, "Browser use")
    "/api/v1/embed-tokens": "POST, OPTIONS",
    "/api/v1/gates": "GET, OPTIONS",
    "/api/v1/buddies/buddy_1/unlocks": "GET, OPTIONS",
    "/api/v1/buddies/buddy_1/gates/golden_hat/unlock": "POST, OPTIONS",
}


def redact(text):
    return SECRETS.sub("<redacted>", str(text))


class Answer:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = raw
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = None

    def code(self):
        return ((self.body or {}).get("error") or {}).get("code") if isinstance(self.body, dict) else None

    def field(self, name):
        return self.body.get(name) if isinstance(self.body, dict) else None

    def __str__(self):
        return redact(f"{self.status} {self.raw[:300].decode('utf-8', 'replace')}")


class Checker:
    def __init__(self, api, routes, authorized=()):
        u = urllib.parse.urlsplit(api)
        self.host, self.port, self.prefix = u.hostname, u.port or 80, u.path.rstrip("/")
        self.routes = routes  # deployed route keys
        self.authorized = set(authorized)  # route keys behind an authorizer
        self.reached = set()
        self.passed = self.failed = 0

    def request(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Answer(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def route_of(self, method, path):
        path = path.split("?", 1)[0]
        for key in self.routes:
            if key == "$default":
                continue
            m, template = key.split(" ", 1)
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            if m == method and re.match(pattern, path):
                return key
        return "$default"

    def check(self, name, method, path, expect, headers=None, body=None):
        """Sends a request and runs `expect(answer)`, which returns None or a complaint."""
        try:
            a = self.request(method, path, headers, body)
            # An authorizer's refusal is API Gateway's own answer, not a function's.
            refused = self.route_of(method, path) in self.authorized and a.status in (401, 403) \
                and isinstance(a.body, dict) and set(a.body) == {"message"}
            problem = expect(a) or (None if refused else common(a, path))
        except Exception as e:  # a refused connection or a broken answer is a failed check
            a, problem = None, f"{type(e).__name__}: {e}"
        if problem:
            self.failed += 1
            print(f"FAIL {name}: {redact(problem)} (got {a})")
        else:
            self.passed += 1
            self.reached.add(self.route_of(method, path))
            print(f"ok   {name}")
        return a


def common(a, path):
    """What API.md promises on every answer."""
    if not a.headers.get("x-request-id"):
        return "no x-request-id"
    # The JWKS and the key portal's assets are cacheable; everything else (the portal page too) is not.
    cacheable = path.startswith("/.well-known/") or path.startswith("/portal/")
    want = "public, max-age=300" if cacheable and a.status == 200 else "no-store"
    if (path == "/portal" or path.startswith("/portal/")) and a.status == 200 \
            and not (a.headers.get("content-security-policy") or "").startswith("default-src 'self'"):
        return "the key portal without its Content-Security-Policy"
    if a.headers.get("cache-control") != want:
        return f"cache-control {a.headers.get('cache-control')!r}, want {want!r}"
    if a.status >= 400:
        err = (a.body or {}).get("error") if isinstance(a.body, dict) else None
        if not isinstance(err, dict) or set(err) - {"code", "message", "request_id", "details"} \
                or not all(isinstance(err.get(k), str) and err.get(k) for k in ("code", "message", "request_id")):
            return "not the API.md error body"
        if err["request_id"] != a.headers["x-request-id"]:
            return "error request_id is not the x-request-id"
    return None


def status(want, code=None, **fields):
    def expect(a):
        if a.status != want:
            return f"status {a.status}, want {want}"
        if code is not None:
            got = a.code() if want >= 400 else a.field("code")
            if got != code:
                return f"code {got!r}, want {code!r}"
        for k, v in fields.items():
            if a.field(k) != v:
                return f"{k} = {a.field(k)!r}, want {v!r}"
        return None
    return expect


def all_of(*expects):
    def expect(a):
        for e in expects:
            problem = e(a)
            if problem:
                return problem
        return None
    return expect


def header(name, value):
    return lambda a: None if a.headers.get(name) == value else f"{name}: {a.headers.get(name)!r}, want {value!r}"


def no_cors(a):
    return "CORS headers on a server route" if any(h.startswith("access-control-") for h in a.headers) else None


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def event_request(path, key, session_id=None):
    """(method, path, headers, body) of a sample event, with the fixture key replaced."""
    with open(path) as f:
        e = json.load(f)
    if "http" not in (e.get("requestContext") or {}) or "rawPath" not in e:
        return None  # not a request API Gateway receives (a Secrets Manager rotation step, say)
    method = e["requestContext"]["http"]["method"]
    url = e["rawPath"] + (f"?{e['rawQueryString']}" if e.get("rawQueryString") else "")
    headers = {k: v.replace(FIXTURE_KEY, key) for k, v in e.get("headers", {}).items() if k.lower() != "host"}
    body = e.get("body")
    if body is not None and e.get("isBase64Encoded"):
        try:  # API Gateway does the encoding: send what the client sent
            body = base64.b64decode(body, validate=True).decode()
        except ValueError:
            pass  # undecodable (the broken-base64 fixture): sent as is, still not JSON
    if body is not None:
        body = body.replace(FIXTURE_KEY, key).encode()
    if session_id:
        url = url.replace(FIXTURE_SESSION, session_id)
    return method, url, headers, body


# Set in a function process by the Lambda runtime or by the emulator itself (its own start
# environment, which tools.sh makes empty but for these): none of them is application config.
RUNTIME_VARS = {"LAMBDA_TASK_ROOT", "_HANDLER", "LC_CTYPE", "PATH", "HOME", "GATEWAY_PORT", "BIND_HOST"}


def check_environment(c, emulator_pid, environment, routed):
    """The environment of every function process the emulator started: the template's variables
    (as deployed) and the runtime's AWS_* ones, nothing else."""
    seen = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != emulator_pid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(v.split("=", 1) for v in f.read().decode().split("\0") if "=" in v)
        except (OSError, ValueError, IndexError):
            continue
        name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        if name not in environment:
            continue
        seen.add(name)
        want = environment[name]
        app = {k: v for k, v in env.items() if not k.startswith("AWS_") and k not in RUNTIME_VARS}
        endpoint = env.get("AWS_ENDPOINT_URL", "")
        problem = None
        if app != want:
            problem = f"variables {sorted(app)} differ from the template's {sorted(want)}"
        elif not re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint):
            problem = "AWS_ENDPOINT_URL is not the emulator"
        if problem:
            c.failed += 1
            print(f"FAIL environment of {name}: {problem}")
        else:
            c.passed += 1
            print(f"ok   environment of {name}: the template's {len(want)} variables + the emulator endpoint")
    for name in sorted(set(routed) - seen):
        c.failed += 1
        print(f"FAIL environment of {name}: no running process of it found")


def check_authorizer_translation(c, path):
    """The adaptation carries an HttpApi Lambda authorizer (the shape the authorizer issue adds)
    over as an explicit Authorizer and the route's AuthorizerId (cloud_stack.py render --authorizer-demo)."""
    with open(path) as f:
        res = json.load(f)["Resources"]
    auths = {n: r["Properties"] for n, r in res.items() if r["Type"] == "AWS::ApiGatewayV2::Authorizer"}
    routes = [r["Properties"] for r in res.values() if r["Type"] == "AWS::ApiGatewayV2::Route" and "AuthorizerId" in r["Properties"]]
    want = {"AuthorizerType": "REQUEST", "AuthorizerPayloadFormatVersion": "2.0", "EnableSimpleResponses": True,
            "IdentitySource": [], "Name": "HatchedKeyAuthorizer"}
    problem = None
    if len(auths) != 1:
        problem = f"{len(auths)} Authorizer resources, want 1"
    else:
        (logical, a), = auths.items()
        if any(a.get(k) != v for k, v in want.items()):
            problem = f"authorizer {json.dumps({k: a.get(k) for k in want})}, want {json.dumps(want)}"
        elif not routes:
            problem = "no route carries the authorizer"
        elif any(r.get("AuthorizationType") != "CUSTOM" or r.get("AuthorizerId") != {"Ref": logical} for r in routes):
            problem = "a route with the authorizer is not CUSTOM with its id"
    if problem:
        c.failed += 1
        print(f"FAIL authorizer translation: {problem}")
    else:
        c.passed += 1
        print(f"ok   authorizer translation: HttpApi Auth -> AWS::ApiGatewayV2::Authorizer + AuthorizerId on "
              f"{', '.join(sorted(r['RouteKey'] for r in routes))}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--demo", required=True)
    p.add_argument("--stack", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--emulator-pid", type=int, help="check the function processes' environment")
    p.add_argument("--authorizer-demo", help="a template rendered with cloud_stack.py render --authorizer-demo")
    args = p.parse_args()
    with open(args.demo) as f:
        demo = json.load(f)
    with open(args.stack) as f:
        stack = json.load(f)
    c = Checker(args.api, stack["routes"], stack.get("authorized_routes", []))
    live, pk = demo["live_secret_key"], demo["publishable_key"]
    auth = {"authorization": f"Bearer {live}"}
    jsonh = {"content-type": "application/json"}
    events = {os.path.relpath(f, args.events): f for f in glob.glob(os.path.join(args.events, "*", "*.json"))}
    replayed = set()

    def replay(name, expect, key=live, session_id=None):
        replayed.add(name)
        request = event_request(events[name], key, session_id)
        if request is None:
            print(f"skip events/{name}: not an HTTP request event")
            return None
        method, url, headers, body = request
        return c.check(f"events/{name}", method, url, expect, headers, body)

    # --- every sample event, as its name promises (tests/tests/e2e/events.rs) ---
    replay("validate-key/valid.json", status(200, "invalid_key", valid=False), key=FIXTURE_KEY)
    replay("validate-key/valid.json", status(200, valid=True))
    replay("validate-key/valid-base64.json", status(200, valid=True))
    replay("validate-key/broken-base64.json", status(400, "invalid_request"))
    replay("validate-key/malformed-key.json", status(200, "invalid_key_format", valid=False))
    replay("validate-key/bad-json.json", status(400, "invalid_request"))
    replay("validate-key/unknown-field.json", status(400, "invalid_request"))
    replay("validate-key/unknown-scope.json", status(400, "invalid_scope"))
    replay("validate-key/wrong-content-type.json", status(415, "unsupported_media_type"))
    replay("validate-key/oversize.json", status(413, "payload_too_large"))
    session = replay("create-widget-session/valid.json", status(201))
    replay("create-widget-session/missing-scopes.json", status(400, "scopes_required"))
    replay("create-widget-session/missing-key.json", status(401, "missing_key"))
    replay("revoke-widget-session/valid.json", status(404, "session_not_found"))
    replay("revoke-widget-session/bad-id.json", status(400, "invalid_request"))
    if session and session.status == 201:
        sid = claims(session.field("token"))["sid"]
        replay("revoke-widget-session/valid.json", status(200, revoked=True), session_id=sid)
    replay("create-embed-token/valid.json", status(201, mode="read-only"))
    replay("create-embed-token/with-scopes.json", status(400, "scopes_not_allowed"))
    replay("introspect-token/bad-body.json", status(400, "invalid_request"))
    replay("introspect-token/garbage.json", lambda a: None if (a.status, a.body) == (200, {"active": False}) else "want 200 {active: false}")
    replay("jwks/valid.json", lambda a: None if a.status == 200 and len((a.body or {}).get("keys", [])) == 1 else "want 200 with one key")
    replay("list-gates/valid.json", lambda a: None if a.status == 200 and a.body["gates"][0]["gate_key"] == "dark_mode" else "want dark_mode first")
    replay("unlock-gate/valid.json", lambda a: None if a.status == 200 and a.body["already_unlocked"] is False
           and a.body["balance"]["amount"] == 75 else "want a first unlock leaving 75 coins")
    replay("unlock-gate/unknown-gate.json", status(404, "gate_not_found"))
    replay("unlock-gate/bad-gate-key.json", status(400, "invalid_request"))
    replay("list-unlocks/valid.json", lambda a: None if a.status == 200 and a.body["unlocks"][0]["gate_key"] == "dark_mode" else "want the dark_mode unlock")
    replay("list-unlocks/unknown-buddy.json", status(404, "buddy_not_found"))
    replay("fallback/preflight.json", all_of(status(204), header("access-control-allow-methods", "POST, OPTIONS"),
                                             header("access-control-allow-origin", "*")))
    replay("fallback/unknown-path.json", status(404, "not_found"))
    replay("fallback/wrong-method.json", status(405, "method_not_allowed"))

    # --- end to end through API Gateway ---
    a = c.check("validate: rate-limit headers", "POST", "/api/v1/keys/validate",
                lambda a: None if a.status == 200 and a.headers.get("ratelimit-limit") == "6000" else "want RateLimit-Limit 6000",
                jsonh, json.dumps({"key": live}).encode())
    s = c.check("session: mint", "POST", "/api/v1/widget-sessions", status(201), {**auth, **jsonh},
                json.dumps({"buddy_id": "buddy_1", "user_id": "u_cloud", "scopes": ["read", "items:equip"]}).encode())
    if s and s.status == 201:
        token = s.field("token")
        sid = claims(token)["sid"]
        c.check("session: the template's issuer", "POST", "/api/v1/tokens/introspect",
                lambda a: None if a.status == 200 and claims(token)["iss"] == "hatched-auth-edge" else "iss is not the Issuer parameter's default",
                jsonh, json.dumps({"token": token}).encode())
        c.check("session: introspect active", "POST", "/api/v1/tokens/introspect",
                lambda a: None if a.field("active") is True and a.field("session_id") == sid
                and a.field("scopes") == ["read", "items:equip"] else "want active with session_id and scopes",
                jsonh, json.dumps({"token": token}).encode())
        c.check("session: revoke", "DELETE", f"/api/v1/widget-sessions/{sid}", status(200, revoked=True), auth)
        c.check("session: revoke again (idempotent)", "DELETE", f"/api/v1/widget-sessions/{sid}", status(200, revoked=True), auth)
        c.check("session: introspect after revoke", "POST", "/api/v1/tokens/introspect",
                lambda a: None if (a.status, a.body) == (200, {"active": False}) else "want active false",
                jsonh, json.dumps({"token": token}).encode())
        c.check("session: no CORS on a server route", "POST", "/api/v1/widget-sessions", all_of(status(401, "missing_key"), no_cors),
                {**jsonh, "origin": "https://app.example.com"}, b"{}")
    e = c.check("embed: mint with the publishable key", "POST", "/api/v1/embed-tokens",
                all_of(status(201, mode="read-only"), header("access-control-allow-origin", "*")),
                {"authorization": f"Bearer {pk}", **jsonh, "origin": "https://app.example.com"},
                json.dumps({"buddy_id": "buddy_1", "user_id": "u_cloud"}).encode())
    if e and e.status == 201:
        c.check("embed: introspect active", "POST", "/api/v1/tokens/introspect",
                lambda a: None if a.field("active") is True and "session_id" not in a.body else "want active, no session_id",
                jsonh, json.dumps({"token": e.field("token")}).encode())
    c.check("embed: publishable key may not mint sessions", "POST", "/api/v1/widget-sessions",
            status(403, "publishable_key_scope"), {"authorization": f"Bearer {pk}", **jsonh},
            json.dumps({"buddy_id": "buddy_1", "user_id": "u", "scopes": ["read"]}).encode())
    c.check("unlock: golden_hat", "POST", "/api/v1/buddies/buddy_1/gates/golden_hat/unlock",
            status(402, "insufficient_balance"), auth)  # 75 left after dark_mode, golden_hat costs 80
    c.check("unlock: repeat dark_mode", "POST", "/api/v1/buddies/buddy_1/gates/dark_mode/unlock",
            lambda a: None if a.status == 200 and a.body["already_unlocked"] is True and a.body["balance"]["amount"] == 75
            else "want already_unlocked, 75 coins", auth)
    c.check("gates: list (browser route carries CORS)", "GET", "/api/v1/gates",
            all_of(lambda a: None if [g["gate_key"] for g in a.body["gates"]] == ["dark_mode", "golden_hat"] else "want both gates",
                   header("access-control-allow-origin", "*")),
            {"authorization": f"Bearer {pk}", "origin": "https://app.example.com"})
    c.check("unlocks: list", "GET", "/api/v1/buddies/buddy_1/unlocks",
            lambda a: None if [u["gate_key"] for u in a.body["unlocks"]] == ["dark_mode"] else "want one unlock", auth)
    c.check("jwks: cache-control", "GET", "/.well-known/jwks.json", status(200))
    for path, methods in BROWSER_ROUTES.items():
        c.check(f"preflight: {path}", "OPTIONS", path,
                all_of(status(204), header("access-control-allow-methods", methods), header("access-control-allow-origin", "*"),
                       header("access-control-max-age", "600"),
                       lambda a: "allow-credentials set" if "access-control-allow-credentials" in a.headers else None),
                {"origin": "https://app.example.com", "access-control-request-method": methods.split(",")[0]})
    c.check("preflight: server route is 405 without CORS", "OPTIONS", "/api/v1/keys/validate",
            all_of(status(405, "method_not_allowed"), no_cors),
            {"origin": "https://app.example.com", "access-control-request-method": "POST"})
    c.check("routing: unknown path", "GET", "/nothing/here", status(404, "not_found"))
    c.check("routing: stage root", "GET", "/", status(404, "not_found"))
    # A method no route of a known path takes (a path template of another route may match it).
    wrong = next(m for m in ("PUT", "PATCH", "DELETE", "GET") if c.route_of(m, "/api/v1/tokens/introspect") == "$default")
    c.check("routing: wrong method", wrong, "/api/v1/tokens/introspect", status(405, "method_not_allowed"))
    c.check("routing: trailing slash is another path", "GET", "/api/v1/gates/", status(404, "not_found"), auth)

    # The platform authorizer (functions/authorize) in front of GET /api/v1/whoami, once the
    # template has them: a valid key and a call without one reach whoami, which echoes the
    # authorizer's context (never the key); a bad key is API Gateway's own 403 and no function runs.
    if "GET /api/v1/whoami" in stack["routes"]:
        def context(auth, **want):
            def expect(a):
                body = a.body if isinstance(a.body, dict) else {}
                ctx = body["lambda"] if isinstance(body.get("lambda"), dict) else body
                if a.status != 200 or ctx.get("auth") != auth:
                    return f"want 200 with auth {auth!r}"
                if any(ctx.get(k) != v for k, v in want.items()):
                    return f"context {json.dumps({k: ctx.get(k) for k in want})}, want {json.dumps(want)}"
                if live.encode() in a.raw or pk.encode() in a.raw:
                    return "the key is in the answer"
                return None
            return expect

        def forbidden(a):
            return None if (a.status, a.body) == (403, {"message": "Forbidden"}) else "want API Gateway's 403 Forbidden"

        c.check("whoami: a live key through the authorizer", "GET", "/api/v1/whoami",
                context("key", customer_id="demo", environment="live", key_type="secret", tier="enterprise"), auth)
        c.check("whoami: no key is anonymous", "GET", "/api/v1/whoami", context("anonymous"))
        c.check("whoami: a malformed key is refused before whoami", "GET", "/api/v1/whoami", forbidden,
                {"authorization": "Bearer hatch_live_" + "0" * 38})
        for name, expect in [("authorize/allow.json", context("key")), ("authorize/anonymous.json", context("anonymous")),
                             ("authorize/deny.json", forbidden), ("whoami/valid.json", context("anonymous"))]:
            if name in events:
                replay(name, expect)

    # A sample event added without an expectation here is still replayed (last, so whatever it
    # changes cannot disturb the checks above): it must be routed to a function (x-request-id,
    # API.md error body) or refused by an authorizer, and must not fail (5xx). Add its
    # expectation above.
    for name in sorted(set(events) - replayed):
        if replay(name, lambda a: f"status {a.status}" if a.status >= 500 else None) is not None:
            print(f"     (events/{name}: generic check only; no expectation in scripts/cloud_check.py)")

    if args.emulator_pid:
        check_environment(c, args.emulator_pid, stack["environment"], stack["routed_functions"])
    if args.authorizer_demo:
        check_authorizer_translation(c, args.authorizer_demo)

    missed = sorted(set(stack["routes"]) - c.reached)
    for key in missed:
        c.failed += 1
        print(f"FAIL route {key}: deployed, but no passing check reached it")
    print(f"cloud: {c.passed} passed, {c.failed} failed ({len(stack['routes'])} deployed routes, "
          f"{len(replayed)} sample events)")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
