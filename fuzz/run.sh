#!/usr/bin/env bash
# Runs every fuzz target of coffer (one per decoder of stored bytes) with
# libFuzzer through cargo-fuzz, on the stable toolchain (no sanitizer: the
# crates are safe Rust; libFuzzer's own limits catch large allocations).
#
#   bash fuzz/run.sh --seconds 30        # CI: each target briefly
#   bash fuzz/run.sh --runs 10000000     # the figures in docs/security.md
#   bash fuzz/run.sh --seconds 60 index_file   # one target
#
# Seeds come from the golden fixture (fuzz/seeds, written by
# `cargo run --release --bin seeds` in fuzz/); new inputs go to the ignored
# fuzz/corpus. A crash, panic, leak of time or allocation above the limits
# fails the run and leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
limit=(-max_total_time=30)
case "${1:-}" in
  --seconds) limit=(-max_total_time="$2"); shift 2 ;;
  --runs) limit=(-runs="$2"); shift 2 ;;
  "") ;;
  *) echo "usage: $0 [--seconds N | --runs N] [TARGET...]" >&2; exit 2 ;;
esac
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
targets=(object config key_file index_file snapshot pack_header tree_node sealed_blob)
if [ $# -gt 0 ]; then targets=("$@"); fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t"
  # Allocation limits: no decoder may allocate more than 512 MiB at once
  # (a reader decodes at most 256 MiB) or hold 2 GiB in all.
  log="corpus/$t.log"
  status=0
  cargo fuzz run --sanitizer none --release "$t" "corpus/$t" "seeds/$t" -- \
    "${limit[@]}" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" != 0 ] || compgen -G "artifacts/$t/*" >/dev/null; then
    tail -40 "$log" >&2
    echo "fuzz $t: failed (status $status); input, if any, in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
