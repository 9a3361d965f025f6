#!/usr/bin/env bash
# Memory and start-up at repository scale, with the scale simulator.
#
#   [USED=1] bash benches/scale.sh [BLOBS] [SNAPSHOTS] [DUMP_SIZE]
#
# Makes a repository (default key costs), backs up a generated pg_dump-like
# stream of DUMP_SIZE (default 200M) for real, then grows the index with
# `coffer-scale` to BLOBS more blobs (default 1000000) in packs that are
# never stored, plus SNAPSHOTS copies of the snapshot (default 1000). Then
# measures, each command 3 times (median seconds and peak RSS, GNU time):
#   - start-up: a backup of a one-line stream (open, unlock, index, lock,
#     commit), with the cache warm;
#   - the same with a fresh cache (what a new pod reads: the bytes of
#     index files and snapshots downloaded);
#   - a backup of a changed day of DUMP_SIZE, and a restore of the real
#     snapshot;
#   - snapshots, status, forget --dry-run;
# each with the index tables (default) and with --no-cache (the whole index
# in memory), the baseline of the same run. With USED=1 a further snapshot
# uses every simulated blob and the simulated packs exist as sparse files,
# so prune finds everything in use: `prune --dry-run` and `prune` are
# measured too. Not run in CI.
set -euo pipefail
blobs=${1:-1000000}
snaps=${2:-1000}
size=${3:-200M}
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=${COFFER_BIN:-$root/target/release/coffer}
scale=$root/target/release/coffer-scale
gen=$root/target/release/gen-dump
cargo build --release -q -p coffer-cli -p coffer-benches -p coffer-e2e --manifest-path "$root/Cargo.toml"
work=${WORK:-$(mktemp -d)}
export COFFER_PASSWORD_FILE=$work/pw COFFER_CACHE_DIR=$work/cache
echo pw > "$work/pw"
repo=$work/repo

"$gen" "$size" > "$work/day0.sql"
"$gen" "$size" scattered > "$work/day1.sql"
"$coffer" init -r "$repo" > /dev/null
"$coffer" backup -r "$repo" --stdin --stdin-filename db.sql < "$work/day0.sql" > /dev/null
"$scale" "$repo" "$work/pw" "$blobs" "$snaps" ${USED:+--used}
echo "index files: $(ls "$repo/index" | wc -l), $(du -sb "$repo/index" | cut -f1) bytes;" \
     "snapshots: $(ls "$repo/snapshots" | wc -l), $(du -sb "$repo/snapshots" | cut -f1) bytes"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# measure LABEL PREPARE COMMAND...: runs PREPARE then COMMAND three times on
# a copy of the repository; prints median seconds and peak MiB.
measure() {
    local label=$1 prepare=$2
    shift 2
    local t=() m=()
    for _ in 1 2 3; do
        rm -rf "$work/run" && cp -a "$repo" "$work/run"
        eval "$prepare" < /dev/null
        /usr/bin/time -f "%e %M" -o "$work/time" "$@" < /dev/null > /dev/null 2> "$work/err" || {
            cat "$work/err"; exit 1; }
        read -r s k < "$work/time"
        t+=("$s"); m+=("$((k / 1024))")
    done
    printf '%-44s %6ss %5s MiB\n' "$label" \
        "$(printf '%s\n' "${t[@]}" | median)" "$(printf '%s\n' "${m[@]}" | median)"
}
r=(-r "$work/run")
warm="$coffer ${r[*]} snapshots > /dev/null"   # fills the cache and the tables
cold="rm -rf $work/cache"
for mode in tables memory; do
    extra=()
    [ "$mode" = memory ] && extra=(--no-cache)
    echo "== $mode"
    measure "start-up: backup of one line, warm" "$warm" \
        sh -c "echo x | $coffer ${r[*]} ${extra[*]} backup --stdin --stdin-filename tiny"
    [ "$mode" = tables ] && measure "start-up: backup of one line, fresh cache" "$cold" \
        sh -c "echo x | $coffer ${r[*]} backup --stdin --stdin-filename tiny"
    measure "backup of a changed day ($size)" "$warm" \
        sh -c "$coffer ${r[*]} ${extra[*]} backup --stdin --stdin-filename db.sql < $work/day1.sql"
    measure "restore of the real snapshot" "$warm" \
        sh -c "$coffer ${r[*]} ${extra[*]} restore latest --stream db.sql --host \$(hostname)"
    measure "snapshots" "$warm" "$coffer" "${r[@]}" "${extra[@]}" snapshots
    measure "status" "$warm" "$coffer" "${r[@]}" "${extra[@]}" status
    measure "forget --keep-last 10 --dry-run" "$warm" \
        "$coffer" "${r[@]}" "${extra[@]}" forget --keep-last 10 --dry-run
    measure "prune --dry-run" "$warm" "$coffer" "${r[@]}" "${extra[@]}" prune --dry-run
    if [ -n "${USED:-}" ]; then
        measure "prune" "$warm" "$coffer" "${r[@]}" "${extra[@]}" prune
    fi
done
