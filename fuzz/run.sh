#!/usr/bin/env bash
# Fuzz one target: fuzz/run.sh TARGET [SECONDS] [more libFuzzer flags...]
#
# Works on stable Rust: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows. Needs
# `cargo install cargo-fuzz` and a C++ compiler (libfuzzer-sys builds libFuzzer). New inputs go
# to corpus/TARGET (not committed); the hand-made seeds in seeds/TARGET are only read. Crashes
# land in artifacts/TARGET. SANITIZER=none skips ASan if its runtime is missing.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags...]}
secs=${2:-480}
shift $(($# < 2 ? $# : 2))
mkdir -p "corpus/$target"
# nice: the machine is shared with builds and load tests. The generous -timeout is for the
# same reason: starved of CPU, a 1 ms input once took 22 s of wall time, a false "hang".
RUSTC_BOOTSTRAP=1 exec nice -n 19 cargo fuzz run -s "${SANITIZER:-address}" "$target" \
    "corpus/$target" "seeds/$target" -- \
    -max_total_time="$secs" -timeout=120 -rss_limit_mb=2048 -max_len="${MAX_LEN:-10000}" \
    -print_final_stats=1 "$@"
