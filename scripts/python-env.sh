# Sourced by scripts/python-tests.sh and benches/interfaces/run.sh (from the repository root):
# the virtual environment target/python-venv ($venv) with maturin, NumPy and pytest from PyPI,
# and `install_wheel PROFILE`, which builds the wheel with maturin in that cargo profile and
# installs it there.
venv=target/python-venv
if [ ! -x "$venv/bin/pip" ]; then
  # Debian's python3 keeps venv in a package of its own.
  rm -rf "$venv"
  python3 -m venv "$venv" 2>/dev/null || {
    rm -rf "$venv" && apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$venv"
  }
fi
# maturin's range is python/pyproject.toml's build requirement.
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" "numpy>=1.21" pytest

install_wheel() {
  local profile=$1 wheels=target/wheels-$1
  rm -rf "$wheels"
  PYO3_PYTHON="$venv/bin/python" "$venv/bin/maturin" build --quiet -m python/Cargo.toml --profile "$profile" \
    -i "$venv/bin/python" -o "$wheels"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/brenier-*.whl
}
