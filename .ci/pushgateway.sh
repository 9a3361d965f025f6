#!/usr/bin/env bash
# Starts or stops a Prometheus Pushgateway (Debian's package, installed with
# apt when missing) on 127.0.0.1 for the metrics tests.
#
#   eval "$(.ci/pushgateway.sh start)"   # prints COFFER_TEST_PUSHGATEWAY
#   .ci/pushgateway.sh stop
set -euo pipefail
cache=${COFFER_CI_CACHE:-$HOME/.cache/coffer-ci}
state=$cache/pushgateway
port=${COFFER_PUSHGATEWAY_PORT:-19091}
# shellcheck source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

start() {
    mkdir -p "$state"
    if ! command -v prometheus-pushgateway >/dev/null; then
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        $SUDO apt-get update -qq >&2
        # The package's service is not started in a container; we start it.
        $SUDO apt-get install -y -qq prometheus-pushgateway >&2
    fi
    stop >/dev/null 2>&1 || true
    start_service "$state" prometheus-pushgateway --web.listen-address="127.0.0.1:$port"
    wait_for "$state" "The Pushgateway" curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready"
    echo "export COFFER_TEST_PUSHGATEWAY=http://127.0.0.1:$port"
}

stop() { stop_service "$state"; }

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
