"""Usage and limit events on the deployed shape (scripts/cloud-test): the stack's table stream
feeds UsageRollupFunction through the event source mapping the template declares; its events
reach an SQS queue through a rule on the stack's bus, as a customer's consumer would read them.

A fresh free-tier secret key (60 a minute) is made through the API and sent 61 requests: the
queue must receive exactly one apikey.near_rate_limit and one apikey.rate_limited for it, with
the deterministic event id and no key material, and the usage route must show 60 accepted and
1 rate limited. Run with the sam venv's Python (boto3, pinned there)."""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import boto3

PATTERN = {"source": ["hatched.auth-edge"]}


def call(api, method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api + path, data=data, method=method)
    req.add_header("authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--demo", required=True)
    p.add_argument("--stack", required=True)
    p.add_argument("--endpoint", required=True)
    args = p.parse_args()
    demo = json.load(open(args.demo))
    bus = json.load(open(args.stack))["outputs"]["EventBusName"]
    aws = dict(endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    sqs, events = boto3.client("sqs", **aws), boto3.client("events", **aws)
    failed = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")
        if not ok:
            failed.append(name)

    queue = sqs.create_queue(QueueName="hatched-cloud-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="hatched-cloud-events", EventBusName=bus, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule="hatched-cloud-events", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    admin = demo["live_secret_key"]
    status, created = call(args.api, "POST", "/api/v1/keys", admin, {"type": "secret", "tier": "free", "label": "events"})
    check("a free key for the events check", status == 201, f"{status} {created}")
    if status != 201:
        sys.exit(1)
    key, prefix = created["key"], created["record"]["prefix"]
    if time.time() % 60 > 40:  # the burst stays inside one minute window
        time.sleep(61 - time.time() % 60)
    answers = [call(args.api, "GET", "/api/v1/gates", key)[0] for _ in range(61)]
    sent = time.time()
    check("61 requests: 60 accepted, 1 rate limited", (answers.count(200), answers.count(429)) == (60, 1),
          f"{answers.count(200)} / {answers.count(429)}")

    received, deadline = [], time.time() + 90
    while time.time() < deadline and len(received) < 2:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event = json.loads(m["Body"])
            if event.get("detail", {}).get("key_prefix") == prefix:
                received.append(event)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    events_lag = time.time() - sent
    time.sleep(3)  # anything sent twice would be here by now
    for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        received.append(json.loads(m["Body"]))
    kinds = sorted(e["detail-type"] for e in received)
    check("the queue received each limit event once", kinds == ["apikey.near_rate_limit", "apikey.rate_limited"], str(kinds))
    for e in received:
        d = e["detail"]
        window = d.get("window_start", "")
        check(f"{e['detail-type']}: source, ids and fields", e["source"] == "hatched.auth-edge"
              and d["event_id"].startswith(f"{prefix}:{e['detail-type']}:") and d["limit"] == 60
              and d["customer_id"] == demo["customer_id"] and bool(window), json.dumps(d))
        check(f"{e['detail-type']}: no key material", key not in json.dumps(e) and key[len(prefix):] not in json.dumps(e))

    usage, deadline = None, time.time() + 60
    while time.time() < deadline:
        status, usage = call(args.api, "GET", f"/api/v1/keys/{prefix}/usage?granularity=hour", admin)
        total = [sum(p[f] for p in usage["points"]) for f in ("accepted", "rate_limited")] if status == 200 else None
        if total == [60, 1]:
            usage_lag = time.time() - sent
            print(f"lag after the last request: events {events_lag:.1f} s, usage {usage_lag:.1f} s "
                  "(the emulator's event source mapping, the function, the bus and the queue)")
            break
        time.sleep(1)
    check("usage on the deployed shape: 60 accepted, 1 rate limited", status == 200 and total == [60, 1], f"{status} {total}")
    print(f"cloud events: {'0 failed' if not failed else str(len(failed)) + ' failed'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
