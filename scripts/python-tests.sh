#!/usr/bin/env bash
# The Python package end to end: builds the wheel with maturin, installs it into the virtual
# environment target/python-venv (scripts/python-env.sh: maturin, NumPy, pytest from PyPI), and
# runs python/tests with pytest: the CLI's bits, examples/python/translate.py, bad input, threads.
#
# Default (what .ci/run runs after `cargo test --workspace`): the test build's profile. The
# extension then reuses every artifact of that build, because unify/ keeps a one-package build's
# features the workspace's; this script checks that, so a drift fails here by name instead of
# quietly compiling tract a second time. `--release`: the wheel a user installs, next to the
# release CLI (a first release build compiles tract: ~10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh

if [ "${1:-}" = --release ]; then
  profile=release
  cli=target/release/brenier
  # The release selection every release script builds (benches/peers/common.sh).
  cargo build --release --quiet -p brenier-train -p brenier-cli
else
  profile=dev
  cli=target/debug/brenier
  # The CLI the tests compare against, current: a no-op right after `cargo test --workspace`.
  cargo test --workspace --no-run --quiet
  PYO3_BUILD_EXTENSION_MODULE=1 PYO3_PYTHON="$venv/bin/python" cargo build --quiet -p brenier-py --lib \
    --message-format=json >target/python-build.json
  rebuilt=$("$venv/bin/python" - <<'PY'
import json
names = set()
for line in open("target/python-build.json"):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and not m.get("fresh"):
        names.add(m["target"]["name"])
print(" ".join(sorted(n for n in names if n.startswith("tract"))))
PY
  )
  if [ -n "$rebuilt" ]; then
    echo "the Python extension's one-package build compiled tract again ($rebuilt): its features" >&2
    echo "drifted from the workspace's test build; align unify/Cargo.toml (see its comment)" >&2
    exit 1
  fi
fi

install_wheel "$profile"
BRENIER_CLI="$cli" "$venv/bin/python" -m pytest -q python/tests
