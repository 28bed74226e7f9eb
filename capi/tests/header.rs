//! include/brenier.h is what cbindgen makes of src/ today: a stale header would let C code compile
//! against functions or fields that no longer exist. `BRENIER_BLESS=1` rewrites it.

use std::path::PathBuf;

#[test]
fn the_committed_header_is_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new().with_crate(&dir).with_config(config).generate().unwrap().write(&mut generated);
    let path = dir.join("include/brenier.h");
    if std::env::var_os("BRENIER_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale; regenerate it with BRENIER_BLESS=1 cargo test -p brenier-capi --test header",
        path.display()
    );
}
