#!/usr/bin/env bash
# Which zstd level serves a backup best: for each dump given, back it up into
# fresh repositories at levels -3, -1, 1, 2, 3 and 4, and compress it with
# `zstd -T2` at the same levels and back it up with restic, in one run:
#
#   bash benches/levels.sh DUMP.sql [DUMP.sql...] [-- ROUNDS]
#
# Times are medians of ROUNDS (default 3) runs, taken in turn (coffer, zstd,
# restic for one level, then the next), with /usr/bin/time. Sizes: what the
# backup added (coffer's bytes_added), the .zst file, restic's repository
# folder. Both tools unlock with their default key derivation (coffer's
# Argon2id, restic's scrypt), as a user's backup does. Not run in CI
# (minutes).
set -euo pipefail
dumps=()
rounds=3
while [ $# -gt 0 ]; do
    case $1 in
        --) rounds=$2; shift 2 ;;
        *) dumps+=("$1"); shift ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=${COFFER_BIN:-$root/target/release/coffer}
[ -x "$coffer" ] || cargo build --release -q -p coffer-cli --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo pw > "$work/pw"
export COFFER_PASSWORD_FILE=$work/pw RESTIC_PASSWORD=pw
unset COFFER_INSECURE_FAST_KDF

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Runs a command ROUNDS times (after `prepare`, reading `input`), prints the
# median seconds.
timed() { # prepare input command...
    local prepare=$1 input=$2
    shift 2
    for _ in $(seq "$rounds"); do
        eval "$prepare"
        /usr/bin/time -f %e -o "$work/t" "$@" < "$input" > /dev/null 2> /dev/null
        cat "$work/t"
    done | median
}

for dump in "${dumps[@]}"; do
    size=$(stat -c %s "$dump")
    echo
    echo "$(basename "$dump"): $((size / 1000000)) MB"
    echo
    echo "| level | coffer s | coffer stored MB | zstd -T2 s | zstd MB |"
    echo "|---|---|---|---|---|"
    for level in -3 -1 1 2 3 4; do
        init="rm -rf $work/repo && $coffer -q -r $work/repo init --compression=$level"
        secs=$(timed "$init" "$dump" "$coffer" -q -r "$work/repo" backup --stdin --stdin-filename db.sql)
        eval "$init"
        added=$("$coffer" -q -r "$work/repo" backup --stdin --stdin-filename db.sql --json < "$dump" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_added"])')
        zflag=$([ "$level" -lt 0 ] && echo "--fast=${level#-}" || echo "-$level")
        zsecs=$(timed "rm -f $work/d.zst" /dev/null zstd -q -T2 "$zflag" "$dump" -o "$work/d.zst")
        zsize=$(stat -c %s "$work/d.zst")
        echo "| $level | $secs | $(awk -v b="$added" 'BEGIN { printf "%.1f", b / 1e6 }') | $zsecs | $(awk -v b="$zsize" 'BEGIN { printf "%.1f", b / 1e6 }') |"
    done
    init="rm -rf $work/restic && restic -q -r $work/restic init"
    rsecs=$(timed "$init" "$dump" restic -q -r "$work/restic" backup --stdin --stdin-filename db.sql)
    rsize=$(du -sb "$work/restic" | cut -f1)
    echo
    echo "restic 0.14 (\`backup --stdin\`, its default compression): $rsecs s, $(awk -v b="$rsize" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
done
