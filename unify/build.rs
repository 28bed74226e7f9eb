// Empty: cargo resolves a crate's build-dependencies only when it has a build script, and the
// host-side feature pins in Cargo.toml need them resolved.
fn main() {}
