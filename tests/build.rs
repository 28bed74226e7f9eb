//! Compiles the CUDA kernel source as C++ against the host shim (cuda_host/), so the kernels'
//! logic is tested on machines without a GPU (tests/cuda_kernels_host.rs).

fn main() {
    let kernels = "../runtime/src/backend/cuda/kernels.cu";
    for f in [kernels, "cuda_host/shim.h", "cuda_host/harness.cpp"] {
        println!("cargo:rerun-if-changed={f}");
    }
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        .file("cuda_host/harness.cpp")
        .flag_if_supported("-pthread")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        // Keep a·b + c as two roundings, like the Rust reference, so results compare tightly.
        .flag_if_supported("-ffp-contract=off")
        .compile("brenier_cuda_host");
}
