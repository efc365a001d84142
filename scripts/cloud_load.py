"""A bounded mixed load against one base URL (standard library only): CLIENTS threads, each with
its own keep-alive connection and its own secret key, for SECONDS, cycling through the keyed
operations (validate, list gates, embed mint, session mint, list unlocks). Prints one JSON line:
requests, statuses, p50/p90/p99/max latency in ms, overall and per operation.

    python3 cloud_load.py --api URL --keys keys.json --clients 4 --seconds 10 [--label NAME]

Anonymous calls (JWKS, introspection) are left out: they share one per-IP budget of 60 a minute
(every request comes from 127.0.0.1), so under load they would measure the 429 path.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse

OPS = [
    ("validate", "POST", "/api/v1/keys/validate", lambda key: json.dumps({"key": key})),
    ("gates", "GET", "/api/v1/gates", None),
    ("embed", "POST", "/api/v1/embed-tokens", lambda key: '{"buddy_id":"buddy_1","user_id":"u_load"}'),
    ("session", "POST", "/api/v1/widget-sessions", lambda key: '{"buddy_id":"buddy_1","user_id":"u_load","scopes":["read"]}'),
    ("unlocks", "GET", "/api/v1/buddies/buddy_1/unlocks", None),
]
EXPECTED = {"validate": 200, "gates": 200, "embed": 201, "session": 201, "unlocks": 200}


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))], 1)


def client(url, key, deadline, out):
    u = urllib.parse.urlsplit(url)
    prefix = u.path.rstrip("/")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    i = 0
    while time.monotonic() < deadline:
        name, method, path, body = OPS[i % len(OPS)]
        i += 1
        headers = {"authorization": f"Bearer {key}"}
        data = None
        if body:
            data = body(key).encode()
            headers["content-type"] = "application/json"
        t = time.perf_counter()
        try:
            conn.request(method, prefix + path, body=data, headers=headers)
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            status = 0
        out.append((name, status, (time.perf_counter() - t) * 1000))
    conn.close()


def run(url, keys, clients, seconds):
    results = [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(url, keys[i % len(keys)], deadline, results[i])) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    flat = [r for rs in results for r in rs]
    lat = [ms for _, _, ms in flat]
    statuses = {}
    for name, status, _ in flat:
        statuses[f"{name}:{status}"] = statuses.get(f"{name}:{status}", 0) + 1
    unexpected = sum(1 for name, status, _ in flat if status != EXPECTED[name])
    return {
        "requests": len(flat),
        "seconds": round(elapsed, 1),
        "rps": round(len(flat) / elapsed, 1),
        "unexpected": unexpected,
        "statuses": statuses,
        "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99), "max": round(max(lat), 1) if lat else None,
        "per_op": {
            name: {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99)}
            for name in EXPECTED
            for v in [[ms for n, _, ms in flat if n == name]]
        },
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--keys", required=True, help="JSON list of secret keys, one per client")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--label", default="")
    args = p.parse_args()
    with open(args.keys) as f:
        keys = json.load(f)
    print(json.dumps({"label": args.label, "clients": args.clients, **run(args.api, keys, args.clients, args.seconds)}))


if __name__ == "__main__":
    main()
