#!/usr/bin/env bash
# What deltas do with dumps that change shape, on a real PostgreSQL:
#
#   eval "$(.ci/pg-server.sh start)"; bash benches/delta_formats.sh [SCALE]
#
# Builds the pgbench database of the shared measurements at SCALE (default
# 10: 1 M accounts with md5 fillers), dumps day 1, applies one kind of
# change, dumps day 2, and backs both days up into two fresh repositories:
# one with deltas (the default) and one with `--delta off`, and into a
# restic repository (restic from apt: `restic backup --stdin`, what day 2
# added measured as the growth of its folder). Kinds of change:
#   scattered   2% of the accounts updated at random rows (plain format)
#   clustered   2% of the accounts updated in one block (plain format)
#   renamed     the same 2% scattered update, and pgbench_accounts renamed
#               (its rows move to another place in the dump, its COPY line
#               changes)
#   custom-Z0   the 2% scattered update, dumped with -Fc -Z0
#   halved      half of the accounts deleted (the dump shrinks by half)
# Prints a Markdown table of what day 2 added in each repository. Not run in
# CI (a few minutes at SCALE 10).
set -euo pipefail
scale=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=${COFFER_BIN:-$root/target/release/coffer}
[ -x "$coffer" ] || cargo build --release -q -p coffer-cli --manifest-path "$root/Cargo.toml"
bin=${COFFER_TEST_PG_BINDIR:-$(pg_config --bindir)}
work=$(mktemp -d)
db=coffer_delta_formats
trap 'rm -rf "$work"; "$bin/dropdb" --if-exists "$db"' EXIT
export COFFER_PASSWORD_FILE=$work/pw
echo pw > "$work/pw"
accounts=$((scale * 100000))
psql() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }

. "$root/benches/pgbench_db.sh"

scattered="UPDATE pgbench_accounts SET abalance = abalance + 1 + (random() * 999)::int
  WHERE aid IN (SELECT 1 + (random() * ($accounts - 1))::int FROM generate_series(1, $accounts / 50));"
clustered="UPDATE pgbench_accounts SET abalance = abalance + 17
  WHERE aid BETWEEN $((accounts / 3)) AND $((accounts / 3 + accounts / 50 - 1));"

added() { # repo, dump -> bytes the backup added
    "$coffer" -r "$1" backup --stdin --stdin-filename bench --json -q < "$2" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_added"])'
}

export RESTIC_PASSWORD=pw
restic_added() { # repo, dump -> bytes the repository folder grew by
    local before after
    before=$(du -sb "$1" | cut -f1)
    restic -r "$1" backup --stdin --stdin-filename bench -q < "$2"
    after=$(du -sb "$1" | cut -f1)
    echo $((after - before))
}

echo "| change | dump MB day 2 | full copy MB | day 2 added, deltas | day 2 added, --delta off | day 2 added, restic | deltas / off |"
echo "|---|---|---|---|---|---|---|"
for kind in scattered clustered renamed custom-Z0 halved; do
    pgbench_db "$bin" "$db" "$scale"
    format=(--format=plain)
    [ "$kind" = custom-Z0 ] && format=(--format=custom --compress=0)
    "$bin/pg_dump" "${format[@]}" "$db" > "$work/day1"
    case $kind in
        scattered | custom-Z0) psql -c "$scattered" ;;
        clustered) psql -c "$clustered" ;;
        renamed) psql -c "$scattered" -c "ALTER TABLE pgbench_accounts RENAME TO zz_accounts" ;;
        halved) psql -c "DELETE FROM pgbench_accounts WHERE aid > $((accounts / 2))" -c "VACUUM FULL pgbench_accounts" ;;
    esac
    "$bin/pg_dump" "${format[@]}" "$db" > "$work/day2"
    rm -rf "$work/auto" "$work/off" "$work/restic"
    restic -r "$work/restic" init -q
    restic_added "$work/restic" "$work/day1" > /dev/null
    restic2=$(restic_added "$work/restic" "$work/day2")
    "$coffer" -r "$work/auto" init -q --insecure-fast-kdf
    "$coffer" -r "$work/off" init -q --insecure-fast-kdf --delta off
    full=$(added "$work/auto" "$work/day1")
    added "$work/off" "$work/day1" > /dev/null
    auto2=$(added "$work/auto" "$work/day2")
    off2=$(added "$work/off" "$work/day2")
    for r in auto off; do
        "$coffer" -r "$work/$r" restore -q latest | cmp -s - "$work/day2" || { echo "$kind: $r restores WRONG"; exit 1; }
    done
    python3 -c "
import sys
size, full, a, o, r = (int(x) for x in sys.argv[1:6])
print(f'| {sys.argv[6]} | {size / 1e6:.0f} | {full / 1e6:.1f} | {a / 1e6:.2f} ({100 * a / full:.1f}%) | {o / 1e6:.2f} ({100 * o / full:.1f}%) | {r / 1e6:.2f} ({100 * r / full:.1f}%) | {a / o:.3f} |')
" "$(stat -c %s "$work/day2")" "$full" "$auto2" "$off2" "$restic2" "$kind"
done
