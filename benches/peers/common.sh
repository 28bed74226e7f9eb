# Sourced by the peer-benchmark scripts (run from the repository root). Sets B, the brenier
# binary: $BRENIER when given (e.g. a binary built for the device being compared), else the
# release build, made here with the trainer as scripts/make-demo-bundle.sh makes it, so the two
# packages resolve tract's features the same way and neither build recompiles tract after the
# other. `default_pairs` sets PAIRS (BUNDLE=INPUT.npy) from the arguments, or to the demo bundle
# and, once benches/byo/run.sh has made it, the 64×64 pair.
if [ -z "${BRENIER:-}" ]; then
    cargo build --release --quiet -p brenier-train -p brenier-cli
fi
B=${BRENIER:-target/release/brenier}

default_pairs() {
    PAIRS=("$@")
    if [ ${#PAIRS[@]} -eq 0 ]; then
        PAIRS=(assets/demo.brn=assets/demo.calib/sources.npy)
        [ -f out/byo/adm64.brn ] && PAIRS+=(out/byo/adm64.brn=out/byo/sources.npy)
    fi
}
