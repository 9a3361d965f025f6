#!/usr/bin/env bash
# Starts or stops Azurite, Microsoft's Azure Blob Storage emulator (from npm,
# pinned), on 127.0.0.1 for the tests, with a container created by a signed
# REST call (coffer itself never creates containers).
#
#   eval "$(.ci/azurite.sh start)"   # prints the environment for the tests
#   .ci/azurite.sh stop
set -euo pipefail
cache=${COFFER_CI_CACHE:-$HOME/.cache/coffer-ci}
state=$cache/azurite
port=${COFFER_AZURITE_PORT:-10000}
version=3.35.0
container=coffer-test
# shellcheck source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

start() {
    mkdir -p "$state"
    if [ ! -x "$state/node_modules/.bin/azurite-blob" ] \
        || [ "$(cat "$state/version" 2>/dev/null)" != "$version" ]; then
        (cd "$state" && npm install --silent --no-audit --no-fund --no-save "azurite@$version" >&2)
        echo "$version" > "$state/version"
    fi
    stop >/dev/null 2>&1 || true
    data=$(mktemp -d)
    echo "$data" > "$state/data"
    start_service "$state" "$state/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 \
        --blobPort "$port" --location "$data" --skipApiVersionCheck --disableTelemetry --silent
    wait_for "$state" Azurite container_created
    cat <<ENV
export AZURE_STORAGE_USE_EMULATOR=true AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1
export COFFER_TEST_AZURE_CONTAINER=$container
export COFFER_TEST_AZURE_ENDPOINT=http://127.0.0.1:$port/devstoreaccount1
export COFFER_TEST_AZURE_CREATE_ONLY_SAS='$(sas rcl)'
ENV
}

# The test container, created with a signed REST call (which also says the
# emulator is up).
container_created() {
    python3 - "$port" "$container" <<'PY' 2>/dev/null
# Create the container with a SharedKey-signed PUT (the emulator's
# well-known development account).
import base64, hashlib, hmac, sys, urllib.request
from email.utils import formatdate
port, container = sys.argv[1], sys.argv[2]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date, version = formatdate(usegmt=True), "2021-08-06"
canonical_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
resource = f"/{account}/{account}/{container}\nrestype:container"
# Content-Length is empty when zero; urllib must add no Content-Type.
to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + canonical_headers + resource
signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Content-Length": "0",
             "Authorization": f"SharedKey {account}:{signature}"})
try:
    urllib.request.urlopen(request, timeout=5)
except urllib.error.HTTPError as e:
    if e.code != 409:  # already exists
        raise
PY
}

# A container SAS token with only the permissions PERMS (e.g. rcl: read,
# create, list; no write-over, no delete), valid for a day.
sas() {
    python3 - "$container" "$1" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
from datetime import datetime, timedelta, timezone
container, perms = sys.argv[1], sys.argv[2]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
expiry = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
version = "2021-08-06"
# Service SAS string-to-sign (versions 2020-12-06 and later), container scope.
fields = [perms, "", expiry, f"/blob/{account}/{container}", "", "", "", version, "c",
          "", "", "", "", "", "", ""]
signature = base64.b64encode(hmac.new(key, "\n".join(fields).encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode({"sv": version, "se": expiry, "sr": "c", "sp": perms, "sig": signature}))
PY
}

stop() { stop_service "$state"; }

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    sas) sas "${2:?permissions, e.g. rcl}" ;;
    *) echo "usage: $0 start|stop|sas PERMS" >&2; exit 2 ;;
esac
