# Sourced by scripts/dev, scripts/test and scripts/bench: installs the project's pinned
# Python tools into virtualenvs outside the work tree (so a fresh clone reuses them)
# and starts/stops the local AWS emulators.
# shellcheck shell=bash

HATCHED_TOOLS="${HATCHED_TOOLS:-$HOME/.cache/hatched-tools}"
HATCHED_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINISTACK_VERSION=1.5.33
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
PYJWT_VERSION=2.15.1
CRYPTOGRAPHY_VERSION=50.0.2
SCHEMATHESIS_VERSION=4.32.5
# The SAM transform for the deployed stack on the emulator (scripts/cloud_stack.py): the version
# aws-sam-cli $SAM_CLI_VERSION pins, used from the sam venv and checked by install_cloud_tools.
SAM_TRANSLATOR_VERSION=1.115.0
# Debian's Chromium, for the key portal's browser tests (driven over its DevTools protocol).
CHROMIUM_VERSION=148.0.7778.167-1~deb12u1
export SAM_CLI_TELEMETRY=0

# make_venv NAME PACKAGE... — create (once) a venv whose stamp records its pinned packages.
make_venv() {
  local name="$1"; shift
  local dir="$HATCHED_TOOLS/$name" want="$*"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ]; then return 0; fi
  echo "installing $name: $want" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  echo "$want" > "$dir/.stamp"
}

install_emulators() {
  make_venv ministack "ministack==$MINISTACK_VERSION"
  make_venv moto "moto[dynamodb,secretsmanager,server]==$MOTO_VERSION" "flask==3.1.3" "flask-cors==6.0.1"
}

# install_chromium — Debian's chromium at $CHROMIUM_VERSION (the browser tests' HATCHED_CHROMIUM).
# Debian's security archive keeps only the newest build of a release: if this one is gone, the
# same major version is taken and named, so the pin is raised knowingly.
install_chromium() {
  local got
  got="$(dpkg-query -W -f '${Version}' chromium 2>/dev/null || true)"
  if [ "$got" != "$CHROMIUM_VERSION" ]; then
    echo "installing chromium $CHROMIUM_VERSION (have: ${got:-none})" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "chromium=$CHROMIUM_VERSION" >&2 \
      || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "chromium=$CHROMIUM_VERSION" >&2; } \
      || { apt-get install -y -qq --no-install-recommends "chromium=${CHROMIUM_VERSION%%.*}.*" >&2 \
           && echo "chromium $CHROMIUM_VERSION is no longer in Debian's archive; installed $(dpkg-query -W -f '${Version}' chromium): raise CHROMIUM_VERSION in scripts/tools.sh" >&2; }
  fi
  export HATCHED_CHROMIUM=/usr/bin/chromium
}

install_jwt_checker() {
  make_venv pyjwt "pyjwt==$PYJWT_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION"
}

install_schemathesis() {
  make_venv schemathesis "schemathesis==$SCHEMATHESIS_VERSION"
}

install_sam_tools() {
  make_venv sam "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
}

# What the deployed stack on the emulator needs (scripts/dev --cloud, scripts/cloud-test):
# ministack, and the SAM transform + boto3 of the sam venv at their pinned versions.
install_cloud_tools() {
  install_emulators
  install_sam_tools
  local got
  got="$("$HATCHED_TOOLS/sam/bin/python" -c 'import samtranslator; print(samtranslator.__version__)')"
  if [ "$got" != "$SAM_TRANSLATOR_VERSION" ]; then
    echo "aws-sam-translator is $got in the sam venv, want $SAM_TRANSLATOR_VERSION (tools.sh)" >&2; return 1
  fi
}

# `python3 -c "$WITH_SIGINT" CMD... &` runs CMD in the background (same pid) with SIGINT at its
# default. A shell without job control starts background jobs with SIGINT ignored, and a
# signal ignored on entry cannot be trapped: without this, Ctrl-C's signal never reaches CMD.
WITH_SIGINT='import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])'

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_emulator KIND PORT LOGFILE — starts ministack or moto on 127.0.0.1:PORT, sets EMULATOR_PID.
start_emulator() {
  local kind="$1" port="$2" log="$3"
  case "$kind" in
    ministack) GATEWAY_PORT="$port" BIND_HOST=127.0.0.1 "$HATCHED_TOOLS/ministack/bin/ministack" >"$log" 2>&1 & ;;
    # For the deployed stack: ministack runs each function's bootstrap with its own environment,
    # then the template's variables, then AWS_ENDPOINT_URL (itself). Started from an empty
    # environment, the functions see only what template.yaml gives them plus the endpoint.
    # scripts/ministack_cloud.py corrects its OPTIONS routing (see there).
    ministack-cloud) env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" GATEWAY_PORT="$port" BIND_HOST=127.0.0.1 \
        AWS_ENDPOINT_URL="http://127.0.0.1:$port" \
        "$HATCHED_TOOLS/ministack/bin/python" "$HATCHED_ROOT/scripts/ministack_cloud.py" >"$log" 2>&1 & ;;
    # moto_server is hard-wired to a threaded server, but moto's transact_write_items copies
    # and restores whole tables without a lock: concurrent transactions then commit twice or
    # roll each other back. Served single-threaded, every call is atomic, as on DynamoDB.
    moto) "$HATCHED_TOOLS/moto/bin/python" -c '
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
' "$port" >"$log" 2>&1 & ;;
    *) echo "unknown emulator '$kind' (ministack|ministack-cloud|moto)" >&2; return 1 ;;
  esac
  EMULATOR_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then return 0; fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then echo "$kind exited; log:" >&2; cat "$log" >&2; return 1; fi
    sleep 0.2
  done
  echo "$kind did not start on port $port" >&2; return 1
}

# start_model BIN UPSTREAM_PORT LOGFILE [RULE FLAGS...] — the DynamoDB behaviour model
# (`hatchctl dynamodb-model`) on a free 127.0.0.1 port in front of the emulator on
# UPSTREAM_PORT; sets MODEL_PID and MODEL_PORT. Its first lines (in LOGFILE) say what it models.
start_model() {
  local bin="$1" upstream="$2" log="$3"; shift 3
  MODEL_PORT="$(free_port)"
  "$bin" dynamodb-model --upstream "http://127.0.0.1:$upstream" --listen "127.0.0.1:$MODEL_PORT" "$@" >"$log" 2>&1 &
  MODEL_PID=$!
  for _ in $(seq 1 100); do
    if grep -q "dynamodb model on" "$log" 2>/dev/null; then return 0; fi
    if ! kill -0 "$MODEL_PID" 2>/dev/null; then echo "the DynamoDB model exited; log:" >&2; cat "$log" >&2; return 1; fi
    sleep 0.1
  done
  echo "the DynamoDB model did not start" >&2; return 1
}

# Points the AWS SDK (Rust and Python) at the local emulator with dummy credentials.
aws_local_env() {
  export AWS_ENDPOINT_URL="http://127.0.0.1:$1"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
