//! Device profiles: one TOML file per device in this folder, compiled into the binary so a
//! device needs nothing but the `brenier` executable. A profile names the Rust target triple,
//! the oldest glibc the device ships (the cross-build links against it), the CUDA architecture,
//! and the defaults `--target NAME` applies: backend, precision, batch, threads, memory budget.

use std::path::Path;

use brenier::backend::{BackendKind, Precision};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target `{0}`; the built-in targets are {1} (or give the path of a .toml profile)")]
    Unknown(String, String),
    #[error("target profile {0}: {1}")]
    Invalid(String, String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub description: String,
    /// Rust target triple the binary is built for.
    pub triple: String,
    /// Oldest glibc on the device; the cross-build must not need a newer one.
    pub glibc: String,
    /// JetPack release, for Jetsons.
    #[serde(default)]
    pub jetpack: Option<String>,
    /// CUDA version the device ships.
    #[serde(default)]
    pub cuda: Option<String>,
    /// NVRTC architecture of the GPU (`sm_87`).
    #[serde(default)]
    pub cuda_arch: Option<String>,
    pub backend: BackendKind,
    pub precision: Precision,
    pub batch: usize,
    /// Host threads (0: every core).
    pub threads: usize,
    pub memory_budget_mib: f64,
}

/// The shipped profiles, by file.
const BUILTIN: &[(&str, &str)] = &[
    ("jetson-orin", include_str!("../jetson-orin.toml")),
    ("jetson-xavier", include_str!("../jetson-xavier.toml")),
    ("x86-cuda", include_str!("../x86-cuda.toml")),
    ("cpu-aarch64", include_str!("../cpu-aarch64.toml")),
    ("cpu-x86_64", include_str!("../cpu-x86_64.toml")),
];

impl Target {
    /// Parses and checks one profile; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Target, TargetError> {
        let t: Target = toml::from_str(text).map_err(|e| TargetError::Invalid(origin.into(), e.to_string()))?;
        let bad = |m: String| Err(TargetError::Invalid(origin.into(), m));
        let arch = t.triple.split('-').next().unwrap_or_default();
        if !["aarch64", "x86_64"].contains(&arch) {
            return bad(format!("triple `{}`: brenier builds for aarch64 and x86_64", t.triple));
        }
        if t.batch == 0 {
            return bad("batch must be at least 1".into());
        }
        if !(t.memory_budget_mib > 0.0 && t.memory_budget_mib.is_finite()) {
            return bad(format!("memory_budget_mib {} must be positive", t.memory_budget_mib));
        }
        if t.backend != BackendKind::Cpu && !t.cuda_arch.as_deref().is_some_and(valid_arch) {
            return bad(format!("backend `{}` needs cuda_arch = \"sm_XY\"", t.backend));
        }
        if let Some(a) = t.cuda_arch.as_deref().filter(|a| !valid_arch(a)) {
            return bad(format!("cuda_arch `{a}` is not of the form sm_XY"));
        }
        if glibc_version(&t.glibc).is_none() {
            return bad(format!("glibc `{}` is not a version like 2.31", t.glibc));
        }
        Ok(t)
    }

    /// The target's CPU architecture (`aarch64`, `x86_64`).
    pub fn arch(&self) -> &str {
        self.triple.split('-').next().unwrap_or_default()
    }
}

fn valid_arch(a: &str) -> bool {
    a.strip_prefix("sm_").is_some_and(|n| n.len() >= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `2.31` → (2, 31).
pub fn glibc_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Every shipped profile, in a fixed order.
pub fn builtin() -> Vec<Target> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            Target::parse(text, &format!("{name}.toml")).expect("shipped profiles are checked by the tests")
        })
        .collect()
}

/// A shipped profile by name, or a profile file by path (anything ending in `.toml`).
pub fn find(name_or_path: &str) -> Result<Target, TargetError> {
    if name_or_path.ends_with(".toml") {
        let text = std::fs::read_to_string(Path::new(name_or_path))
            .map_err(|e| TargetError::Invalid(name_or_path.into(), e.to_string()))?;
        return Target::parse(&text, name_or_path);
    }
    builtin().into_iter().find(|t| t.name == name_or_path).ok_or_else(|| {
        TargetError::Unknown(name_or_path.into(), BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse_and_match_their_file_names() {
        let all = builtin();
        assert_eq!(all.len(), 5);
        for (t, (file, _)) in all.iter().zip(BUILTIN) {
            assert_eq!(&t.name, file);
        }
        let orin = find("jetson-orin").unwrap();
        assert_eq!(
            (orin.arch(), orin.cuda_arch.as_deref(), orin.precision),
            ("aarch64", Some("sm_87"), Precision::F16)
        );
        let xavier = find("jetson-xavier").unwrap();
        assert_eq!((xavier.cuda_arch.as_deref(), xavier.glibc.as_str()), (Some("sm_72"), "2.31"));
    }

    #[test]
    fn every_shipped_cuda_arch_is_one_the_kernels_are_compiled_for() {
        // The NVRTC test compiles for these; a profile naming another would ship untested.
        let compiled = ["sm_72", "sm_87", "sm_90"];
        for t in builtin() {
            if let Some(a) = &t.cuda_arch {
                assert!(compiled.contains(&a.as_str()), "{}: {a}", t.name);
            }
        }
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        let base = include_str!("../cpu-x86_64.toml");
        for (change, why) in [
            (("batch = 4", "batch = 0"), "batch"),
            (("memory_budget_mib = 4096", "memory_budget_mib = -1"), "memory_budget_mib"),
            (("backend = \"cpu\"", "backend = \"cuda\""), "cuda_arch"),
            (("triple = \"x86_64-unknown-linux-gnu\"", "triple = \"riscv64gc-unknown-linux-gnu\""), "riscv64"),
            (("glibc = \"2.31\"", "glibc = \"new\""), "glibc"),
            (("threads = 0", "threads = 0\ncolour = \"red\""), "colour"),
            (("precision = \"f32\"", "precision = \"f8\""), "f8"),
        ] {
            let text = base.replace(change.0, change.1);
            assert_ne!(text, base, "{change:?} did not apply");
            let e = Target::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(e.contains("t.toml") && e.contains(why), "{why}: {e}");
        }
        let e = find("jetson-nano").unwrap_err().to_string();
        assert!(e.contains("jetson-orin") && e.contains("jetson-nano"), "{e}");
    }
}
