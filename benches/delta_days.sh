#!/usr/bin/env bash
# Delta storage over two months of a database's life, on a real PostgreSQL.
#
#   eval "$(.ci/pg-server.sh start)"; bash benches/delta_days.sh [SCALE] [DAYS] [KEEP]
#
# Builds the pgbench database of the shared measurements (SCALE 50: 5 M
# accounts with md5 fillers, a 488 MB plain dump), then each day updates 2%
# of the accounts at random rows (PostgreSQL writes the new row versions
# where it finds room, so rows also move), adds history rows, dumps with
# `pg_dump --format=plain` and backs the dump up with `--time` set to that
# day. Then `forget --keep-daily KEEP` and `prune --delete-delay 0h` run,
# as a nightly job would (prune also re-bases delta chains). Day 1 is
# also backed up with `--delta off` into a second repository (and with
# restic, if installed), for the baseline of the same run.
#
# Prints one line per day (added bytes, % of a full compressed copy, delta
# chunks, backup seconds and peak RSS, repository size in full copies), then
# restores every kept snapshot and compares it with the dump's SHA-256, and
# times the restore of the newest snapshot against the `--delta off` one.
# Needs zstd and GNU time. Not run in CI (about 20 minutes at SCALE 50).
set -euo pipefail
scale=${1:-50}
days=${2:-60}
keep=${3:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=${COFFER_BIN:-$root/target/release/coffer}
[ -x "$coffer" ] || cargo build --release -q -p coffer-cli --manifest-path "$root/Cargo.toml"
bin=${COFFER_TEST_PG_BINDIR:-$(pg_config --bindir)}
work=${WORK:-$(mktemp -d)}
db=${DB:-coffer_delta_bench}
trap '"$bin/dropdb" --if-exists "$db"' EXIT
export COFFER_PASSWORD_FILE=$work/pw
echo pw > "$work/pw"
main=$work/repo
off=$work/repo-off

psql() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
timed() { # label, command...: runs it, records "seconds peak_kib" in $work/time.$label
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$work/time.$label" "$@"
}

. "$root/benches/pgbench_db.sh"
pgbench_db "$bin" "$db" "$scale"
accounts=$((scale * 100000))

"$coffer" -r "$main" init -q --insecure-fast-kdf
"$coffer" -r "$off" init -q --insecure-fast-kdf --delta off
: > "$work/hashes"
full=0
echo "| day | dump MB | added MB | added / full copy | delta chunks | backup s | backup peak RSS MiB | bases read MB | prune s | prune peak RSS MiB | repository / full copy |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for day in $(seq 0 $((days - 1))); do
    if [ "$day" -gt 0 ]; then
        psql <<SQL
UPDATE pgbench_accounts SET abalance = abalance + 1 + (random() * 999)::int
  WHERE aid IN (SELECT 1 + (random() * ($accounts - 1))::int FROM generate_series(1, $accounts / 50));
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
  SELECT 1 + g % ($scale * 10), 1 + g % $scale, 1 + (g * 7919) % $accounts, g % 500, now()
  FROM generate_series(1, $accounts / 100) g;
SQL
    fi
    "$bin/pg_dump" --format=plain "$db" > "$work/day.sql"
    [ "$day" -eq 0 ] && full=$(zstd -3 -T2 -q -c "$work/day.sql" | wc -c) && cp "$work/day.sql" "$work/day0.sql"
    [ "$day" -eq 1 ] && cp "$work/day.sql" "$work/day1.sql"
    when=$(date -u -d "2026-01-01 + $day days 02:00" "+%Y-%m-%d %H:%M:%S")
    timed backup "$coffer" -r "$main" backup --stdin --stdin-filename bench.sql --host bench \
        --time "$when" --json -q < "$work/day.sql" > "$work/summary.json"
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot_id"])' "$work/summary.json")
    echo "$id $(sha256sum < "$work/day.sql" | cut -d' ' -f1)" >> "$work/hashes"
    # The nightly job: retention, then prune (which also re-bases: the
    # newest version whole, older ones as deltas against newer ones).
    "$coffer" -r "$main" forget -q --keep-daily "$keep" > /dev/null
    timed prune "$coffer" -r "$main" prune -q --delete-delay 0h > /dev/null
    repo_bytes=$(du -sb "$main" | cut -f1)
    python3 - "$work/summary.json" "$work/time.backup" "$full" "$repo_bytes" "$day" "$(stat -c %s "$work/day.sql")" "$work/time.prune" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
secs, kib = open(sys.argv[2]).read().split()[-2:]
psecs, pkib = open(sys.argv[7]).read().split()[-2:]
full, repo, day, size = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
print(f"| {day} | {size / 1e6:.0f} | {s['bytes_added'] / 1e6:.2f} | {100 * s['bytes_added'] / full:.1f}% "
      f"| {s['delta_chunks']} of {s['new_chunks']} | {float(secs):.1f} | {int(kib) / 1024:.0f} "
      f"| {s['base_bytes_read'] / 1e6:.0f} | {float(psecs):.1f} | {int(pkib) / 1024:.0f} | {repo / full:.2f} |")
PY
done

echo
echo "Baselines of this run (day 0, then day 1):"
"$coffer" -r "$off" backup --stdin -q --json < "$work/day0.sql" > /dev/null
timed off1 "$coffer" -r "$off" backup --stdin -q --json < "$work/day1.sql" > "$work/off1.json"
off_added=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_added"])' "$work/off1.json")
echo "- coffer --delta off: day 1 added $((off_added / 1000000)) MB ($(awk -v a="$off_added" -v f="$full" 'BEGIN { printf "%.1f%%", 100 * a / f }') of a full copy), in $(cut -d' ' -f1 "$work/time.off1") s"
if command -v restic > /dev/null; then
    export RESTIC_PASSWORD=pw RESTIC_REPOSITORY=$work/restic
    restic init -q > /dev/null
    restic backup -q --stdin --stdin-filename bench.sql < "$work/day0.sql" > /dev/null
    before=$(du -sb "$work/restic" | cut -f1)
    restic backup -q --stdin --stdin-filename bench.sql < "$work/day1.sql" > /dev/null
    after=$(du -sb "$work/restic" | cut -f1)
    echo "- restic $(restic version | cut -d' ' -f2): day 1 added $(((after - before) / 1000000)) MB ($(awk -v a="$((after - before))" -v f="$full" 'BEGIN { printf "%.1f%%", 100 * a / f }') of a full copy)"
fi
echo "- full compressed copy (zstd -3 of day 0): $((full / 1000000)) MB"

echo
echo "Restores:"
bad=0
while read -r id hash; do
    if "$coffer" -r "$main" snapshots --json -q | grep -q "$id"; then
        got=$("$coffer" -r "$main" restore -q "$id" | sha256sum | cut -d' ' -f1)
        [ "$got" = "$hash" ] || { echo "snapshot $id restores WRONG"; bad=1; }
    fi
done < "$work/hashes"
[ "$bad" -eq 0 ] && echo "- every kept snapshot restores byte-identical"
newest=$(tail -1 "$work/hashes" | cut -d' ' -f1)
for round in 1 2 3; do
    timed "deltas$round" "$coffer" -r "$main" restore -q "$newest" > /dev/null
    timed "whole$round" "$coffer" -r "$off" restore -q latest > /dev/null
done
for round in 1 2 3; do
    echo "- restore round $round: newest day (deltas) $(cat "$work/time.deltas$round" | tr ' ' '/') s/KiB, day 1 with --delta off $(cat "$work/time.whole$round" | tr ' ' '/') s/KiB"
done
