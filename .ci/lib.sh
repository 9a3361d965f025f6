# Shared by the .ci/*.sh test-server scripts (sourced): run a server in its
# own process group with its log and pid under a state folder, wait for it,
# and stop it with the data folder it was given.

# start_service STATE COMMAND...: starts COMMAND detached, output to STATE/log.
start_service() {
    local state=$1
    shift
    setsid "$@" > "$state/log" 2>&1 < /dev/null &
    echo $! > "$state/pid"
}

# wait_for STATE NAME CHECK...: runs CHECK every half second for up to 60 s;
# on timeout prints the server's log and fails.
wait_for() {
    local state=$1 name=$2
    shift 2
    for _ in $(seq 1 120); do
        if "$@"; then return 0; fi
        sleep 0.5
    done
    echo "$name did not come up; its log:" >&2
    tail -n 30 "$state/log" >&2
    return 1
}

# stop_service STATE [SIGNAL]: SIGNAL (default TERM) to the group, SIGKILL
# after 5 s; removes the pid file and the data folder named in STATE/data.
stop_service() {
    local state=$1 signal=${2:-TERM} pid
    [ -f "$state/pid" ] || return 0
    pid=$(cat "$state/pid")
    kill "-$signal" -- "-$pid" 2>/dev/null || kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 10); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$state/pid"
    if [ -f "$state/data" ]; then rm -rf "$(cat "$state/data")" "$state/data"; fi
}
