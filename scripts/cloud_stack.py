"""Deploys template.yaml -- the file that goes to AWS -- through CloudFormation on the local
emulator (ministack), the way `sam build && sam deploy` would, without Docker.

    python cloud_stack.py deploy --endpoint URL --target-dir DIR --out stack.json
    python cloud_stack.py render [--authorizer-demo] > rendered.json   (inspect the adapted copy)

Runs with the pinned SAM venv's Python (aws-sam-translator and boto3 come with aws-sam-cli).
The emulator needs a few adaptations, made here on an in-memory copy of the template and printed
on every deploy (README, "Three ways to run it"):

  1. CodeUri: . -> s3://<local bucket>/<binary>.zip, each zip holding the function's binary as
     `bootstrap`: what `sam build` + `sam package` do, with binaries built for this host.
  2. Architectures -> this host's architecture: the emulator runs bootstraps as local processes
     (`Architectures` is only honoured on its Docker path), so the binaries are native builds.
  3. The SAM transform runs here (aws-sam-translator, the version aws-sam-cli pins), not in the
     emulator.
  4. The OpenAPI `Body` SAM generates for the HttpApi becomes explicit AWS::ApiGatewayV2
     Integration / Route (/ Authorizer) resources: the emulator ignores an imported Body and
     would deploy an API with no routes. Every route, method, integration, payload format and
     authorizer attachment of the Body is carried over; anything else in it is refused.
  5. A REQUEST authorizer with no identity source gets an explicit empty IdentitySource: the
     emulator would otherwise default it to the Authorization header (a 401 without invoking the
     authorizer when the header is missing).
  6. Resource types the emulator does not know (AWS::SecretsManager::RotationSchedule) are
     dropped, and said so.
"""

import argparse
import copy
import io
import json
import os
import platform
import sys
import time
import zipfile

UNSUPPORTED = {"AWS::SecretsManager::RotationSchedule"}
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def note(msg):
    print(f"cloud: {msg}", file=sys.stderr)


def host_architecture():
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[machine]


def load_template(path):
    from samcli.yamlhelper import yaml_parse

    with open(path) as f:
        return yaml_parse(f.read())


def sam_functions(template):
    """(logical id, binary name) of every AWS::Serverless::Function."""
    out = []
    for name, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
            if not binary:
                raise SystemExit(f"{name}: no Metadata.BuildProperties.Binary (the cargo binary to deploy)")
            out.append((name, binary))
    return out


def adapt(template, bucket, arch):
    """The SAM template, adapted and transformed into plain CloudFormation for the emulator."""
    from types import SimpleNamespace

    from samtranslator.translator.transform import transform

    t = copy.deepcopy(template)
    done = []
    for name, binary in sam_functions(t):
        t["Resources"][name]["Properties"]["CodeUri"] = f"s3://{bucket}/{binary}.zip"
    done.append(f"CodeUri -> s3://{bucket}/<binary>.zip (sam package)")
    glob = (t.get("Globals") or {}).get("Function") or {}
    if glob.get("Architectures") not in (None, [arch]):
        done.append(f"Architectures {glob['Architectures']} -> [{arch}] (native binaries)")
        glob["Architectures"] = [arch]
    for name, _ in sam_functions(t):
        props = t["Resources"][name]["Properties"]
        if props.get("Architectures") not in (None, [arch]):
            props["Architectures"] = [arch]
    for name in [n for n, r in t["Resources"].items() if r.get("Type") in UNSUPPORTED]:
        done.append(f"dropped {name} ({t['Resources'][name]['Type']}: not an emulator resource)")
        del t["Resources"][name]

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out = transform(t, {}, SimpleNamespace(load=lambda: {}))
    done.append("SAM transform applied locally (aws-sam-translator)")
    for name in [n for n, r in out["Resources"].items() if r.get("Type") == "AWS::ApiGatewayV2::Api"]:
        done += explicit_http_api(out["Resources"], name)
    return out, done


METHODS = {"get", "put", "post", "delete", "options", "head", "patch"}
INTEGRATION_KEYS = {"type", "uri", "httpMethod", "payloadFormatVersion", "timeoutInMillis"}


def explicit_http_api(resources, api_name):
    """Replaces an HTTP API's OpenAPI Body with explicit Integration/Route/Authorizer resources."""
    api = resources[api_name]
    props = api["Properties"]
    body = props.pop("Body", None)
    if body is None:
        return []
    if "BodyS3Location" in props:
        raise SystemExit(f"{api_name}: BodyS3Location is not supported")
    known = {"openapi", "info", "paths", "components", "tags"}
    if set(body) - known:
        raise SystemExit(f"{api_name}: OpenAPI keys this adaptation does not carry over: {sorted(set(body) - known)}")
    props["Name"] = (body.get("info") or {}).get("title", api_name)
    props["ProtocolType"] = "HTTP"
    ref_api = {"Ref": api_name}
    made = {"routes": 0, "integrations": 0, "authorizers": 0}

    authorizers = {}
    schemes = (body.get("components") or {}).get("securitySchemes") or {}
    extra = set(body.get("components") or {}) - {"securitySchemes"}
    if extra:
        raise SystemExit(f"{api_name}: OpenAPI components not carried over: {sorted(extra)}")
    for scheme, spec in schemes.items():
        ext = spec.get("x-amazon-apigateway-authorizer")
        if ext is None:
            raise SystemExit(f"{api_name}: security scheme {scheme} is not an API Gateway authorizer")
        logical = f"{api_name}{''.join(c for c in scheme if c.isalnum())}Authorizer"
        a = {"ApiId": ref_api, "Name": scheme}
        kind = ext.get("type", "").lower()
        if kind == "request":
            a["AuthorizerType"] = "REQUEST"
            a["AuthorizerUri"] = ext["authorizerUri"]
            a["AuthorizerPayloadFormatVersion"] = ext["authorizerPayloadFormatVersion"]
            if "enableSimpleResponses" in ext:
                a["EnableSimpleResponses"] = ext["enableSimpleResponses"]
            # Absent means none: explicit, or the emulator defaults to the Authorization header.
            a["IdentitySource"] = ext.get("identitySource") or []
            if "authorizerResultTtlInSeconds" in ext:
                a["AuthorizerResultTtlInSeconds"] = ext["authorizerResultTtlInSeconds"]
            if "authorizerCredentials" in ext:
                a["AuthorizerCredentialsArn"] = ext["authorizerCredentials"]
            authorizers[scheme] = ("CUSTOM", logical)
        elif kind == "jwt":
            a["AuthorizerType"] = "JWT"
            a["IdentitySource"] = [ext["identitySource"]] if isinstance(ext.get("identitySource"), str) else ext.get("identitySource", [])
            cfg = ext.get("jwtConfiguration") or {}
            a["JwtConfiguration"] = {"Audience": cfg.get("audience", []), "Issuer": cfg.get("issuer", "")}
            authorizers[scheme] = ("JWT", logical)
        else:
            raise SystemExit(f"{api_name}: authorizer {scheme} of type {kind!r} is not carried over")
        resources[logical] = {"Type": "AWS::ApiGatewayV2::Authorizer", "Properties": a}
        made["authorizers"] += 1

    integrations = {}
    for path, ops in (body.get("paths") or {}).items():
        for op_name, op in ops.items():
            if op_name == "x-amazon-apigateway-any-method":
                method = "ANY"
            elif op_name in METHODS:
                method = op_name.upper()
            elif op_name == "parameters":
                continue
            else:
                raise SystemExit(f"{api_name}: {path}: operation key {op_name!r} not carried over")
            unknown = set(op) - {"x-amazon-apigateway-integration", "responses", "parameters", "security", "isDefaultRoute"}
            if unknown:
                raise SystemExit(f"{api_name}: {method} {path}: keys not carried over: {sorted(unknown)}")
            integ = op["x-amazon-apigateway-integration"]
            if set(integ) - INTEGRATION_KEYS:
                raise SystemExit(f"{api_name}: {method} {path}: integration keys not carried over: {sorted(set(integ) - INTEGRATION_KEYS)}")
            key = json.dumps(integ, sort_keys=True)
            if key not in integrations:
                logical = f"{api_name}Integration{len(integrations) + 1}"
                i = {
                    "ApiId": ref_api,
                    "IntegrationType": integ["type"].upper(),
                    "IntegrationUri": integ["uri"],
                    "IntegrationMethod": integ.get("httpMethod", "POST"),
                    "PayloadFormatVersion": integ.get("payloadFormatVersion", "2.0"),
                }
                if "timeoutInMillis" in integ:
                    i["TimeoutInMillis"] = integ["timeoutInMillis"]
                resources[logical] = {"Type": "AWS::ApiGatewayV2::Integration", "Properties": i}
                integrations[key] = logical
                made["integrations"] += 1
            route_key = "$default" if path == "$default" else f"{method} {path}"
            r = {
                "ApiId": ref_api,
                "RouteKey": route_key,
                "Target": {"Fn::Join": ["/", ["integrations", {"Ref": integrations[key]}]]},
            }
            security = op.get("security") or []
            if len(security) > 1 or any(len(s) != 1 for s in security):
                raise SystemExit(f"{api_name}: {route_key}: only one authorizer per route is carried over")
            for s in security:
                (scheme, scopes), = s.items()
                if scheme not in authorizers:
                    raise SystemExit(f"{api_name}: {route_key}: unknown authorizer {scheme}")
                r["AuthorizationType"], logical_auth = authorizers[scheme]
                r["AuthorizerId"] = {"Ref": logical_auth}
                if scopes:
                    r["AuthorizationScopes"] = scopes
            logical = f"{api_name}Route{alnum(method.title() + path) or 'Default'}"
            if logical in resources:
                raise SystemExit(f"{api_name}: two routes would be {logical}")
            resources[logical] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": r}
            made["routes"] += 1
    return [
        f"{api_name}: OpenAPI Body -> {made['routes']} Route, {made['integrations']} Integration, "
        f"{made['authorizers']} Authorizer resources"
    ]


def alnum(text):
    return "".join(c for c in text.title() if c.isalnum())


def authorizer_demo(template):
    """The template with a stand-in REQUEST authorizer on GET /api/v1/gates, shaped exactly as
    the authorizer issue will declare one: proves the adaptation carries it over. Once the
    template declares HatchedKeyAuthorizer itself, the template as it is."""
    t = copy.deepcopy(template)
    if "HatchedKeyAuthorizer" in (t["Resources"]["HttpApi"]["Properties"].get("Auth") or {}).get("Authorizers", {}):
        return t
    t["Resources"]["HttpApi"]["Properties"]["Auth"] = {
        "Authorizers": {
            "HatchedKeyAuthorizer": {
                "FunctionArn": {"Fn::GetAtt": ["FallbackFunction", "Arn"]},
                "AuthorizerPayloadFormatVersion": "2.0",
                "EnableSimpleResponses": True,
            }
        }
    }
    events = t["Resources"]["ListGatesFunction"]["Properties"]["Events"]
    next(iter(events.values()))["Properties"]["Auth"] = {"Authorizer": "HatchedKeyAuthorizer"}
    return t


def zip_bootstrap(path):
    """The Lambda zip: the binary as an executable `bootstrap` at its root. Stored, not deflated:
    deflating ten ~40 MB debug binaries took 3.5 s of the 6 s to the first answer, and on
    loopback the bytes cost less than the compression."""
    buf = io.BytesIO()
    info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_STORED
    with open(path, "rb") as f, zipfile.ZipFile(buf, "w") as z:
        z.writestr(info, f.read())
    return buf.getvalue()


def deploy(args):
    import boto3

    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    s3 = session.client("s3", endpoint_url=args.endpoint)
    cfn = session.client("cloudformation", endpoint_url=args.endpoint)
    template = load_template(args.template)
    rendered, done = adapt(template, args.bucket, host_architecture())
    for d in done:
        note(f"adaptation: {d}")

    t0 = time.time()
    s3.create_bucket(Bucket=args.bucket)
    for _, binary in sam_functions(template):
        path = os.path.join(args.target_dir, binary)
        if not os.access(path, os.X_OK):
            raise SystemExit(f"no binary {path}: build it first (cargo build --bins)")
        s3.put_object(Bucket=args.bucket, Key=f"{binary}.zip", Body=zip_bootstrap(path))
    note(f"packaged {len(sam_functions(template))} functions in {time.time() - t0:.1f}s")

    t0 = time.time()
    # Through S3, as `sam deploy` does: an inline TemplateBody may not exceed 51,200 bytes, and
    # the transformed template of 20 functions is twice that.
    s3.put_object(Bucket=args.bucket, Key="template.json", Body=json.dumps(rendered, separators=(",", ":")).encode())
    try:
        cfn.create_stack(
            StackName=args.stack,
            TemplateURL=f"{args.endpoint.rstrip('/')}/{args.bucket}/template.json",
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except cfn.exceptions.ClientError as e:
        raise SystemExit(f"CreateStack: {str(e)[:500]}")
    deadline = time.time() + 300
    while True:
        stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if not status.endswith("IN_PROGRESS") or time.time() > deadline:
            for e in cfn.describe_stack_events(StackName=args.stack)["StackEvents"]:
                if "FAILED" in e.get("ResourceStatus", ""):
                    note(f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}")
            raise SystemExit(f"stack {args.stack}: {status}")
        time.sleep(0.3)
    note(f"stack {args.stack} created in {time.time() - t0:.1f}s")

    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    res = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=args.stack)["StackResources"]
    }
    api_id = res["HttpApi"]
    # What each deployed function's configuration holds must be exactly what the template
    # declares for it (Globals + its own Variables): the emulator endpoint is the one thing
    # added, by the emulator, at process start (scripts/cloud_check.py --emulator-pid).
    lam = session.client("lambda", endpoint_url=args.endpoint)
    globals_vars = set(((template.get("Globals") or {}).get("Function") or {}).get("Environment", {}).get("Variables", {}))
    environment = {}
    for logical, _ in sam_functions(template):
        own = template["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
        got = lam.get_function_configuration(FunctionName=res[logical]).get("Environment", {}).get("Variables", {})
        if set(got) != globals_vars | set(own):
            raise SystemExit(f"{logical}: deployed variables {sorted(got)}, template declares {sorted(globals_vars | set(own))}")
        environment[res[logical]] = got
    # The functions API Gateway invokes (integrations and authorizers): the ones that must have
    # run once every route has been called. Others (a rotation function) never start here.
    uris = json.dumps([r["Properties"].get("IntegrationUri") or r["Properties"].get("AuthorizerUri")
                       for r in rendered["Resources"].values()
                       if r["Type"] in ("AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Authorizer")])
    routed = [res[n] for n, _ in sam_functions(template) if f'"{n}"' in uris or f"${{{n}." in uris]
    info = {
        "stack": args.stack,
        "api_id": api_id,
        "api_url": f"{args.endpoint.rstrip('/')}/_aws/execute-api/{api_id}",
        "table": outputs["TableName"],
        "signing_secret": outputs["SigningKeySecretArn"],
        # Read from the stack's resources too, so an older template without the output deploys.
        "data_key_secret": outputs.get("DataKeySecretArn") or res["DataKeySecret"],
        "outputs": outputs,
        "functions": {n: res[n] for n, _ in sam_functions(template)},
        "environment": environment,
        "routed_functions": sorted(routed),
        "routes": sorted(
            r["Properties"]["RouteKey"] for r in rendered["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"
        ),
        # Routes behind an authorizer: API Gateway itself refuses there (403 {"message":"Forbidden"}).
        "authorized_routes": sorted(
            r["Properties"]["RouteKey"] for r in rendered["Resources"].values()
            if r["Type"] == "AWS::ApiGatewayV2::Route" and "AuthorizerId" in r["Properties"]
        ),
    }
    with open(args.out, "w") as f:
        json.dump(info, f, indent=2)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("--endpoint", required=True)
    d.add_argument("--target-dir", required=True, help="where the function binaries are (…/debug)")
    d.add_argument("--out", required=True)
    d.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    d.add_argument("--stack", default="hatched")
    d.add_argument("--bucket", default="hatched-local-code")
    r = sub.add_parser("render")
    r.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    r.add_argument("--authorizer-demo", action="store_true")
    args = p.parse_args()
    if args.cmd == "render":
        t = load_template(args.template)
        if args.authorizer_demo:
            t = authorizer_demo(t)
        rendered, done = adapt(t, "hatched-local-code", host_architecture())
        for line in done:
            note(f"adaptation: {line}")
        json.dump(rendered, sys.stdout, indent=1)
    else:
        deploy(args)


if __name__ == "__main__":
    main()
