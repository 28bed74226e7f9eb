//! What the command tests share: running the real binary and checking how it fails.
// Each test file compiles this module on its own and uses a different subset of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use brenier::io::npy;

/// Runs `brenier` with `args`: (success, stdout + stderr). A panic is always a test failure.
pub fn brenier(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_brenier")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "panic: {text}");
    (out.status.success(), text)
}

/// Expects `args` to fail with every one of `needles` in its output (case-insensitive), leaving
/// no `output` file behind.
pub fn fails_with(args: &[&str], needles: &[&str], output: Option<&Path>) {
    let (ok, text) = brenier(args);
    assert!(!ok, "expected failure for {args:?}: {text}");
    for n in needles {
        assert!(text.to_lowercase().contains(&n.to_lowercase()), "{args:?}: `{n}` not in: {text}");
    }
    if let Some(o) = output {
        assert!(!o.exists(), "a failed run left {}", o.display());
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `.npy` of `shape` filled with `fill`, in `dir`.
pub fn input_npy(dir: &Path, shape: &[usize], fill: f32) -> PathBuf {
    let p = dir.join(format!("in-{}-{fill}.npy", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")));
    npy::write(&p, shape, &vec![fill; shape.iter().product()]).unwrap();
    p
}

/// `translate --bundle B --input X --output Y` followed by `extra`.
pub fn translate<'a>(bundle: &'a Path, input: &'a Path, output: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["translate", "--bundle", s(bundle), "--input", s(input), "--output", s(output)];
    args.extend_from_slice(extra);
    args
}
