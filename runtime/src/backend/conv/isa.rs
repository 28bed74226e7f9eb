//! Which vector instruction sets this CPU runs, for the kernels compiled once per set.

/// An instruction set a kernel is compiled for, found at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    /// What the release build targets (SSE2 on x86_64).
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// Every set this CPU can run, widest last.
    pub(super) fn runnable() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut all = vec![Isa::Baseline];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2);
            }
            // The AVX-512 builds enable what avx512f implies (AVX2, FMA among them): all checked.
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
            {
                all.push(Isa::Avx512);
            }
        }
        all
    }

    /// Every set this CPU runs with fused multiply-add: those the direct kernels are built for.
    #[cfg(test)]
    pub(super) fn runnable_with_fma() -> Vec<Isa> {
        Isa::runnable().into_iter().filter(|isa| isa.fma_lanes().is_some()).collect()
    }

    /// The widest set this CPU runs.
    pub(super) fn native() -> Isa {
        Isa::runnable().pop().unwrap_or(Isa::Baseline)
    }

    /// f32 lanes of the set's vectors with fused multiply-add, `None` for the baseline (which
    /// has no FMA).
    pub(super) fn fma_lanes(self) -> Option<usize> {
        match self {
            Isa::Baseline => None,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(8),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(16),
        }
    }
}
