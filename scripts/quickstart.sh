#!/usr/bin/env bash
# Quickstart: build coffer, back up a generated 500 MB pg_dump-like stream into
# a local repository, list it, back it up again (deduplicated), restore it and
# compare. The repository is kept in ./quickstart (or the folder given as the
# first argument) so you can go on exploring it; the generated dump is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin coffer --bin gen-dump
bin=$PWD/target/release
dir=$(realpath -m "${1:-quickstart}")
if [ -e "$dir" ]; then
    # Only a folder an earlier quickstart made is replaced.
    [ -f "$dir/.coffer-quickstart" ] || { echo "$dir exists and is not a quickstart folder" >&2; exit 2; }
    rm -rf "$dir"
fi
mkdir -p "$dir"
touch "$dir/.coffer-quickstart"
trap 'rm -f "$dir/mydb.sql"' EXIT

export COFFER_REPOSITORY=$dir/repo COFFER_PASSWORD_FILE=$dir/password COFFER_CACHE_DIR=$dir/cache
echo "a long passphrase for the quickstart" > "$COFFER_PASSWORD_FILE"

set -x
"$bin/coffer" init
"$bin/gen-dump" 500M > "$dir/mydb.sql"
"$bin/coffer" backup --stdin --stdin-filename mydb.sql --tag nightly < "$dir/mydb.sql"
"$bin/coffer" backup --stdin --stdin-filename mydb.sql --tag nightly < "$dir/mydb.sql"
"$bin/coffer" snapshots
"$bin/coffer" restore latest | cmp - "$dir/mydb.sql"
{ set +x; } 2>/dev/null
echo "restored stream is byte-identical; repository size: $(du -sh "$COFFER_REPOSITORY" | cut -f1) for 2 x 500 MB"
echo
echo "The repository is kept in $dir. To explore it:"
echo "  export COFFER_REPOSITORY=$COFFER_REPOSITORY COFFER_PASSWORD_FILE=$COFFER_PASSWORD_FILE"
echo "  $bin/coffer snapshots; $bin/coffer stats; $bin/coffer check --read-data"
