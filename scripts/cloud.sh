# Sourced by scripts/dev --cloud (and so by scripts/cloud-test and scripts/cloud-bench, which
# run it): the deployed shape on this machine. template.yaml's functions, built for this host,
# run as their `bootstrap` binaries behind the emulator's API Gateway, deployed through its
# CloudFormation (scripts/cloud_stack.py says which adaptations the emulator needs).
# shellcheck shell=bash

# cloud_up DIR LOG: builds the functions and hatchctl, starts ministack (EMULATOR_PID,
# CLOUD_PORT), deploys the stack, seeds the demo world. Writes DIR/stack.json (ids, URLs, routes)
# and DIR/demo.json (live keys: DIR must be private); exports HATCHED_API_URL, HATCHED_TABLE,
# HATCHED_SIGNING_SECRET, HATCHED_DATA_KEY_SECRET and the AWS endpoint settings.
cloud_up() {
  local dir="$1" log="$2" target="${CARGO_TARGET_DIR:-target}" t
  install_cloud_tools
  echo "building the functions and hatchctl (debug, $(uname -m))…" >&2
  t=$(date +%s.%N)
  # The same build scripts/test does, so a warm target dir has nothing to do.
  cargo build --workspace --bins --quiet
  echo "cloud: built in $(_cloud_since "$t")s" >&2
  t=$(date +%s.%N)
  CLOUD_PORT="$(free_port)"
  start_emulator ministack-cloud "$CLOUD_PORT" "$log"
  echo "cloud: emulator up in $(_cloud_since "$t")s" >&2
  "$HATCHED_TOOLS/sam/bin/python" scripts/cloud_stack.py deploy --endpoint "http://127.0.0.1:$CLOUD_PORT" \
    --target-dir "$target/debug" --out "$dir/stack.json"
  aws_local_env "$CLOUD_PORT"
  stack() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$dir/stack.json" "$1"; }
  HATCHED_API_URL="$(stack api_url)"
  HATCHED_TABLE="$(stack table)"
  HATCHED_SIGNING_SECRET="$(stack signing_secret)"
  HATCHED_DATA_KEY_SECRET="$(stack data_key_secret)"
  export HATCHED_API_URL HATCHED_TABLE HATCHED_SIGNING_SECRET HATCHED_DATA_KEY_SECRET
  # The stack made the table and both secrets (CloudFormation generated their values);
  # seed-demo finds them and adds the demo world.
  t=$(date +%s.%N)
  "$target/debug/hatchctl" seed-demo --json > "$dir/demo.json"
  echo "cloud: demo world seeded in $(_cloud_since "$t")s" >&2
}

_cloud_since() { python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }

# cloud_down: stops the emulator (its bootstrap processes end with it) and removes the binaries
# it unpacked for that port.
cloud_down() {
  if [ -n "${EMULATOR_PID:-}" ]; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
    EMULATOR_PID=
  fi
  if [ -n "${CLOUD_PORT:-}" ]; then
    rm -rf "/tmp/ministack-provided-code-$CLOUD_PORT"  # its env has no TMPDIR
  fi
}
