#!/usr/bin/env bash
# What a delta day costs on object storage, in transfers: a day's dump backed
# up after the day before, on S3, three ways:
#   kept cache  the nightly job's cache survives (a volume): yesterday's
#               chunks are read from the local blob copies
#   fresh pod   an empty cache: the bases are downloaded
#   delta off   `--delta off`: nothing is downloaded, every changed chunk
#               is uploaded whole
#
#   eval "$(.ci/s3-server.sh start)"
#   bash benches/delta_s3.sh DAY0.sql DAY1.sql [ROUNDS]
#
# Needs the S3 settings in the environment (AWS_ENDPOINT_URL, keys, and
# COFFER_TEST_S3_BUCKET as .ci/s3-server.sh prints them). Each round makes
# fresh repositories under a random prefix. Prints one line per backup of
# day 1 (uploaded, downloaded, GETs, seconds, peak RSS) and the medians.
set -euo pipefail
day0=$1 day1=$2 rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
coffer=${COFFER_BIN:-$root/target/release/coffer}
[ -x "$coffer" ] || cargo build --release -q -p coffer-cli --manifest-path "$root/Cargo.toml"
bucket=${COFFER_TEST_S3_BUCKET:?set the S3 test environment (.ci/s3-server.sh start)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo pw > "$work/pw"
export COFFER_PASSWORD_FILE=$work/pw COFFER_INSECURE_FAST_KDF=1

# One backup of day 1: prints "up down gets seconds rss_kib".
day1_backup() { # repo cache extra-args...
    local repo=$1 cache=$2
    shift 2
    /usr/bin/time -f '%e %M' -o "$work/time" \
        "$coffer" -q -r "$repo" --cache-dir "$cache" backup --stdin --stdin-filename db.sql \
        --json "$@" < "$day1" 2> /dev/null > "$work/out.json"
    python3 - "$work/out.json" "$work/time" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
secs, rss = open(sys.argv[2]).read().split()[-2:]
r = s["requests"]
print(r["bytes_up"], r["bytes_down"], r["get"], secs, rss)
EOF
}

for round in $(seq "$rounds"); do
    for how in kept fresh off; do
        repo="s3://$bucket/bench-delta-s3-$RANDOM$RANDOM"
        cache=$work/cache-$how-$round
        "$coffer" -q -r "$repo" --cache-dir "$cache" init 2> /dev/null
        "$coffer" -q -r "$repo" --cache-dir "$cache" backup --stdin --stdin-filename db.sql \
            < "$day0" 2> /dev/null
        case $how in
            kept) line=$(day1_backup "$repo" "$cache") ;;
            fresh) line=$(day1_backup "$repo" "$work/empty-$round") ;;
            off) line=$(day1_backup "$repo" "$cache" --delta off) ;;
        esac
        echo "$how $line" | tee -a "$work/lines"
    done
done

echo
echo "| day 1 backup | uploaded MB | downloaded MB | GETs | seconds | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
python3 - "$work/lines" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    how, *v = line.split()
    rows.setdefault(how, []).append([float(x) for x in v])
names = {"kept": "deltas, cache kept", "fresh": "deltas, fresh pod (empty cache)", "off": "`--delta off`"}
for how in ["kept", "fresh", "off"]:
    med = [statistics.median(col) for col in zip(*rows[how])]
    print(f"| {names[how]} | {med[0] / 1e6:.1f} | {med[1] / 1e6:.1f} | {med[2]:.0f} | {med[3]:.2f} | {med[4] / 1024:.0f} |")
EOF
