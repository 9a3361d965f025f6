#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL server for the end-to-end tests:
# Debian's PostgreSQL server binaries (installed with apt when missing), run as
# a non-root user, listening on 127.0.0.1 only on a private port, password
# authentication, data in a temporary directory removed on stop.
#
#   eval "$(.ci/pg-server.sh start)"   # prints PG* variables for the tests
#   .ci/pg-server.sh stop
set -euo pipefail
cache=${COFFER_CI_CACHE:-$HOME/.cache/coffer-ci}
state=$cache/pg-server
port=${COFFER_PG_PORT:-15432}
password=coffer-test-pg
os_user=coffer-pg

bindir() {
    local d
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
    # pg_config may come from libpq-dev and name /usr/bin; the server lives
    # in Debian's versioned folder.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
    done
}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$os_user" -- "$@"; else "$@"; fi
}

start() {
    mkdir -p "$state"
    bin=$(bindir)
    if [ -z "$bin" ]; then
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        $SUDO apt-get update -qq >&2
        $SUDO apt-get install -y -qq postgresql postgresql-contrib >&2
        bin=$(bindir)
    fi
    [ -n "$bin" ] || { echo "no PostgreSQL server binaries found" >&2; return 1; }
    # initdb refuses to run as root: the server gets its own system user.
    if [ "$(id -u)" = 0 ] && ! id "$os_user" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$os_user"
    fi
    stop >/dev/null 2>&1 || true
    data=$(mktemp -d)
    chmod 755 "$data"
    [ "$(id -u)" = 0 ] && chown "$os_user" "$data"
    echo "$data" > "$state/data"
    echo "$bin" > "$state/bin"
    printf '%s\n' "$password" > "$data/pwfile"
    [ "$(id -u)" = 0 ] && chown "$os_user" "$data/pwfile"
    as_server_user "$bin/initdb" -D "$data/db" --username=postgres --pwfile="$data/pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
        >"$data/initdb.log" 2>&1 || { cat "$data/initdb.log" >&2; return 1; }
    mkdir -p "$data/socket"
    [ "$(id -u)" = 0 ] && chown "$os_user" "$data/socket"
    as_server_user "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data/socket -c fsync=off -c max_connections=100" >&2 \
        || { tail -n 30 "$data/server.log" >&2; return 1; }
    cat <<ENV
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGPASSWORD=$password
export COFFER_TEST_PG_BINDIR=$bin
ENV
}

stop() {
    [ -f "$state/data" ] || return 0
    data=$(cat "$state/data")
    bin=$(cat "$state/bin")
    if [ -d "$data/db" ]; then
        as_server_user "$bin/pg_ctl" -D "$data/db" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$data" "$state/data" "$state/bin"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
