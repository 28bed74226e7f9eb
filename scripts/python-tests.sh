#!/usr/bin/env bash
# The Python package end to end: builds the wheel with maturin, installs it into a fresh virtual
# environment with numpy and pytest from PyPI, and runs python/tests (the CLI's bits, bad input,
# threads) and examples/python/translate.py.
#
# CI runs it after `cargo test --workspace`, in that build's profile: the extension then reuses
# every artifact of the test build (unify/ keeps a one-package build's features the workspace's),
# and only pyo3, numpy and the package itself compile. `--release` builds the wheel a user
# installs (its first build compiles tract in release: ~10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dev
cli=target/debug/brenier
if [ "${1:-}" = --release ]; then profile=release; cli=target/release/brenier; fi
venv=target/python-venv
wheels=target/wheels-$profile

if [ ! -x "$venv/bin/python" ]; then
  # Debian's python3 keeps venv in a package of its own.
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$venv"
  }
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" "numpy>=1.21" pytest

# The check unify/ exists for: a one-package build of the extension must find tract built. It
# runs before maturin so a drift fails here, naming the crates, instead of quietly doubling the
# build time.
PYO3_BUILD_EXTENSION_MODULE=1 cargo build --quiet -p brenier-py --lib --profile "$profile" \
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
  echo "drifted from the workspace's; align unify/Cargo.toml (see its comment)" >&2
  exit 1
fi

rm -rf "$wheels"
"$venv/bin/maturin" build --quiet -m python/Cargo.toml --profile "$profile" -i "$venv/bin/python" -o "$wheels"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/brenier-*.whl

[ -x "$cli" ] || cargo build --quiet --profile "$profile" --workspace --lib --tests --bins
BRENIER_CLI="$cli" "$venv/bin/python" -m pytest -q python/tests
