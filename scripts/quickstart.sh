#!/usr/bin/env bash
# Quickstart: build coffer, back up a generated 500 MB pg_dump-like stream into
# a local repository, list it, back it up again (deduplicated), restore it and
# compare. Everything happens in a temporary directory that is removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin coffer --bin gen-dump
bin=$PWD/target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export COFFER_REPOSITORY=$work/repo COFFER_PASSWORD_FILE=$work/password COFFER_CACHE_DIR=$work/cache
echo "a long passphrase for the quickstart" > "$COFFER_PASSWORD_FILE"

set -x
"$bin/coffer" init
"$bin/gen-dump" 500M > "$work/mydb.sql"
"$bin/coffer" backup --stdin --stdin-filename mydb.sql --tag nightly < "$work/mydb.sql"
"$bin/coffer" backup --stdin --stdin-filename mydb.sql --tag nightly < "$work/mydb.sql"
"$bin/coffer" snapshots
"$bin/coffer" restore latest | cmp - "$work/mydb.sql"
{ set +x; } 2>/dev/null
echo "restored stream is byte-identical; repository size: $(du -sh "$COFFER_REPOSITORY" | cut -f1) for 2 x 500 MB"
