#!/usr/bin/env bash
# How pg_dump's output format decides what a day of change costs in coffer.
#
#   eval "$(.ci/pg-server.sh start)"; bash benches/pg_formats.sh [SCALE]
#
# Builds a pgbench database at SCALE (default 10: 1M accounts) with filled
# filler columns (realistic compressibility), dumps it as plain, custom
# (pg_dump's default compression) and custom -Z0; then changes 2% of the
# accounts in one block plus 1% more history rows, dumps again, and backs up
# both days of each format into a fresh repository. Prints a Markdown table:
# dump size, what day 1 stored, what day 2 added. Not run in CI.
set -euo pipefail
scale=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=$root/target/release/coffer
[ -x "$coffer" ] || cargo build --release -q -p coffer-cli --manifest-path "$root/Cargo.toml"
bin=${COFFER_TEST_PG_BINDIR:-$(pg_config --bindir)}
work=$(mktemp -d)
trap 'rm -rf "$work"; "$bin/dropdb" --if-exists coffer_formats_bench' EXIT
db=coffer_formats_bench

"$bin/dropdb" --if-exists "$db"
"$bin/createdb" "$db"
"$bin/pgbench" -i -q -s "$scale" "$db" >/dev/null 2>&1
"$bin/psql" -X -q -d "$db" -c "UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text)"

dump_all() { # day
    "$bin/pg_dump" --format=plain "$db" > "$work/plain.$1"
    "$bin/pg_dump" --format=custom "$db" > "$work/custom.$1"
    "$bin/pg_dump" --format=custom --compress=0 "$db" > "$work/custom-Z0.$1"
}
dump_all 1
accounts=$((scale * 100000))
block=$((accounts / 50))
start=$((accounts / 3))
"$bin/psql" -X -q -d "$db" -c "
  UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid BETWEEN $start AND $((start + block - 1));
  INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
    SELECT 1 + g % (10 * $scale), 1 + g % $scale, g, g % 500, now() FROM generate_series(1, $((accounts / 100))) g;"
dump_all 2

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "| pg_dump format | dump size | day 1 stored | day 2 added | day 2 added / dump |"
echo "|---|---|---|---|---|"
for f in plain custom custom-Z0; do
    export COFFER_REPOSITORY=$work/repo-$f COFFER_PASSWORD_FILE=$work/pw COFFER_INSECURE_FAST_KDF=1
    echo pw > "$work/pw"
    "$coffer" init -q
    one=$("$coffer" backup --stdin --json -q < "$work/$f.1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_added"])')
    two=$("$coffer" backup --stdin --json -q < "$work/$f.2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_added"])')
    size=$(stat -c %s "$work/$f.2")
    label=$f; [ "$f" = custom ] && label="custom (-Fc, default compression)"; [ "$f" = custom-Z0 ] && label="custom -Z0 (-Fc -Z0)"
    echo "| $label | $(mb "$size") | $(mb "$one") | $(mb "$two") | $(awk -v a="$two" -v s="$size" 'BEGIN { printf "%.1f%%", 100 * a / s }') |"
done
