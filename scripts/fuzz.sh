#!/usr/bin/env bash
# Fuzzes brenier's input readers with cargo-fuzz (libFuzzer + AddressSanitizer, nightly).
#
#   scripts/fuzz.sh smoke [SECONDS [TARGET...]]    each target SECONDS (default 60; .ci/run passes 25)
#   scripts/fuzz.sh campaign [RUNS [TARGET...]]    each target RUNS executions (default 1000000)
#   scripts/fuzz.sh seeds              regenerate fuzz/seeds/ from code (tests/examples/fuzz_seeds.rs)
#
# Targets: bundle (open, validate, read every section), manifest (JSON parser and rules), record
# (the calibration record and its validation), npy, png (the image input path). Each starts from the committed seeds in fuzz/seeds/<target>/;
# what it learns goes to fuzz/corpus/<target>/ (not committed). A crash stops the run with the
# input saved under fuzz/artifacts/<target>/: commit it to tests/fixtures/fuzz-regressions/
# <target>/ so `cargo test` replays it (tests/tests/fuzz_regressions.rs), then fix the reader.
# Fuzzing builds skip checksums (brenier's, see bundle::format::checksum_matches, and the png
# crate's chunk CRCs), so first repair the input's checksums and check that the regression test
# fails without the fix: otherwise a normal build stops at the checksum and the test proves nothing.
# A single allocation over 64 MiB counts as a crash: no input here is that large, so such an
# allocation would be a size taken from the file without checking it.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-smoke}
targets=(bundle manifest record npy png)
if (( $# > 2 )); then
  targets=("${@:3}")
fi

if [[ $mode == seeds ]]; then
  rm -rf fuzz/seeds
  cargo run --quiet -p brenier-tests --example fuzz_seeds -- fuzz/seeds
  exit 0
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (cargo-fuzz needs one): rustup toolchain install nightly" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

case $mode in
  smoke) limit=(-max_total_time="${2:-60}") ;;
  campaign) limit=(-runs="${2:-1000000}") ;;
  *) echo "usage: scripts/fuzz.sh smoke [SECONDS [TARGET...]] | campaign [RUNS [TARGET...]] | seeds" >&2; exit 2 ;;
esac

echo "== cargo +nightly fuzz build -O"
(cd fuzz && cargo +nightly fuzz build -O)

summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/corpus/$t.log"
  echo "== fuzz $t (${limit[*]})"
  start=$(date +%s)
  if ! (cd fuzz && cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        "${limit[@]}" -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: target $t FAILED; the input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  summary+=("$(printf '%-9s %12s runs %9s/s  cov %5s  corpus %5s  %4ss' "$t" "$runs" "$rate" "${cov:-?}" \
    "$(ls "fuzz/corpus/$t" | wc -l)" "$(( $(date +%s) - start ))")")
done
echo "== fuzz summary ($mode): no crashes"
printf '%s\n' "${summary[@]}"
