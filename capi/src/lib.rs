//! brenier's C ABI: `libbrenier.so` / `libbrenier.a` with the header `include/brenier.h`
//! (generated from this file by cbindgen; `tests/header.rs` fails when it is stale).
//!
//! Thin over the runtime: every call opens, plans and runs through the same `Engine` the CLI
//! uses, so a translation here is the CLI's bits for the same images in one batch (the CLI's
//! default). Names (methods, backends, precisions, domains) are the strings the CLI takes,
//! parsed by the runtime, so this layer holds no pipeline logic.
//!
//! Errors: every function returns a `BrenierStatus`; on anything but `BRENIER_STATUS_OK` the
//! message is in `brenier_last_error()` on the same thread. No panic unwinds into C: panics are
//! caught at the boundary (`BRENIER_STATUS_PANIC`). As everywhere in Rust, running out of memory
//! aborts the process; the C API takes no memory budget (the CLI's `--memory-budget` does).
//!
//! Threads: an engine may be used from several threads at once (`BrenierEngine` is `Send` and
//! `Sync`, checked below). A translation prepares the networks it needs before its first step;
//! concurrent first uses of a network wait for one preparation. Every run works on its own
//! buffers and the engine's thread pool. `brenier_close` must not overlap any other call on that engine; different
//! engines are independent. `brenier_last_error` is per thread.

#[cfg(panic = "abort")]
compile_error!("brenier's C ABI catches panics at the boundary: build it with panic = \"unwind\"");

use std::ffi::c_char;
use std::path::Path;

use runtime::backend;
use runtime::bundle::{Bundle, LoadMode};
use runtime::pipeline::{GenerateOptions, NetTime, Silent, TranslateOptions};
use runtime::Engine;

mod boundary;
mod status;

use boundary::{call, invalid, non_null, opt_str, Failure};
pub use status::BrenierStatus;

/// An open bundle on a backend. Opaque: created by `brenier_open`/`brenier_open_memory`,
/// released by `brenier_close`.
pub struct BrenierEngine {
    engine: Engine,
}

// The thread-safety statement above, held by the compiler.
const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<BrenierEngine>()
};

/// How to open a bundle. Zeroed fields take the defaults; `brenier_open_options_default`
/// fills them.
#[repr(C)]
pub struct BrenierOpenOptions {
    /// "cpu", "cuda" or "auto"; NULL: "cpu".
    pub backend: *const c_char,
    /// "f32" or "f16"; NULL: "f32".
    pub precision: *const c_char,
    /// Host threads; 0: every core.
    pub threads: u32,
    /// Read the file into memory instead of mapping it (a file that may be replaced in place).
    pub no_mmap: bool,
}

/// A translation's settings. Start from `brenier_translate_options_default()` (the CLI's
/// defaults): a zeroed struct means η = 0, not the bundle's η.
#[repr(C)]
pub struct BrenierTranslateOptions {
    /// "ot-ald", "ddib" or "neural-ot"; NULL: "ot-ald".
    pub method: *const c_char,
    /// Source domain: "a", "b" or the bundle's domain name; NULL: "a".
    pub from: *const c_char,
    /// Encode time T; 0: the bundle's (and the OT map's).
    pub t: u32,
    /// Steps K for each of encode and decode; 0: the bundle's default.
    pub steps: u32,
    /// DDIM η of the decode; negative: the bundle's default.
    pub eta: f32,
    /// Soft OT map temperature (OT-ALD); 0 or negative: the hard map.
    pub tau: f32,
    /// Seed of the decode's noise (η > 0); the same seed gives the same bits on one machine.
    pub seed: u64,
}

/// A generation's settings. `brenier_generate_options_default` gives the CLI's defaults.
#[repr(C)]
pub struct BrenierGenerateOptions {
    /// "dpm-ot" or "prior-ot"; NULL: "dpm-ot".
    pub method: *const c_char,
    /// Domain generated: "a", "b" or a domain name; NULL: "b".
    pub domain: *const c_char,
    /// Network evaluations; 0: 10.
    pub nfe: u32,
    /// DDIM η of the reverse steps, in [0, 1].
    pub eta: f32,
    /// Soft OT map temperature; 0 or negative: the hard map.
    pub tau: f32,
    /// Seed of the initial noise and of the steps' noise; the same seed gives the same bits.
    pub seed: u64,
}

/// Where a call's time went, in seconds, and how many network evaluations it made.
#[repr(C)]
#[derive(Default)]
pub struct BrenierTimings {
    pub encode_s: f64,
    pub map_s: f64,
    pub decode_s: f64,
    pub nfe: u32,
}

/// The library's version, a static NUL-terminated string. Thread-safe.
#[no_mangle]
pub extern "C" fn brenier_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the calling thread's last failed call (empty after a success). Valid until
/// the thread's next brenier call; copy it to keep it. Never NULL. Thread-safe (per thread).
#[no_mangle]
pub extern "C" fn brenier_last_error() -> *const c_char {
    boundary::last_error()
}

/// Defaults for `brenier_open`: CPU, f32, every core, mapped. Thread-safe.
#[no_mangle]
pub extern "C" fn brenier_open_options_default() -> BrenierOpenOptions {
    BrenierOpenOptions { backend: std::ptr::null(), precision: std::ptr::null(), threads: 0, no_mmap: false }
}

/// The CLI's translate defaults (OT-ALD from domain a at the bundle's T and K). Thread-safe.
#[no_mangle]
pub extern "C" fn brenier_translate_options_default() -> BrenierTranslateOptions {
    BrenierTranslateOptions {
        method: std::ptr::null(),
        from: std::ptr::null(),
        t: 0,
        steps: 0,
        eta: -1.0,
        tau: 0.0,
        seed: 0,
    }
}

/// The CLI's generate defaults (DPM-OT into domain b, 10 evaluations, η = 0). Thread-safe.
#[no_mangle]
pub extern "C" fn brenier_generate_options_default() -> BrenierGenerateOptions {
    let base = GenerateOptions::default();
    BrenierGenerateOptions {
        method: std::ptr::null(),
        domain: std::ptr::null(),
        nfe: base.nfe as u32,
        eta: base.eta,
        tau: 0.0,
        seed: base.seed,
    }
}

/// # Safety
/// `o` is NULL or a valid `BrenierOpenOptions` whose strings are NULL or NUL-terminated.
unsafe fn backend_from(o: *const BrenierOpenOptions) -> Result<(Box<dyn backend::Backend>, LoadMode), Failure> {
    let default = brenier_open_options_default();
    // SAFETY: the caller's contract.
    let o = unsafe { o.as_ref() }.unwrap_or(&default);
    let backend = backend::open_named(
        unsafe { opt_str(o.backend, "backend") }?,
        unsafe { opt_str(o.precision, "precision") }?,
        o.threads as usize,
    )?;
    let mode = if o.no_mmap { LoadMode::Read } else { LoadMode::Mmap };
    Ok((backend, mode))
}

/// # Safety
/// `out` is non-null and writable; it is written only on success.
unsafe fn finish_open(
    bundle: Bundle,
    backend: Box<dyn backend::Backend>,
    out: *mut *mut BrenierEngine,
) -> Result<(), Failure> {
    let engine = Engine::new(bundle, backend)?;
    // SAFETY: the caller's contract.
    unsafe { *out = Box::into_raw(Box::new(BrenierEngine { engine })) };
    Ok(())
}

/// Opens the bundle at `path` (validated: header, section table, manifest; each section's
/// checksum on its first read) on the backend `options` asks for (NULL: defaults). On success
/// `*out` holds the engine; on failure `*out` is left as it was. Networks are prepared on first
/// use. Thread-safe (no shared state).
///
/// # Safety
/// `path` is a NUL-terminated path; `options` is NULL or valid; `out` is a valid pointer.
#[no_mangle]
pub unsafe extern "C" fn brenier_open(
    path: *const c_char,
    options: *const BrenierOpenOptions,
    out: *mut *mut BrenierEngine,
) -> BrenierStatus {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: the caller's contract.
        let path = unsafe { opt_str(path, "path") }?.ok_or_else(|| invalid("path is NULL"))?;
        let (backend, mode) = unsafe { backend_from(options) }?;
        unsafe { finish_open(Bundle::open_with(Path::new(path), mode)?, backend, out) }
    })
}

/// Opens a bundle held in memory (`len` bytes at `data`, copied: the caller may free them after
/// the call). As `brenier_open` otherwise. Thread-safe.
///
/// # Safety
/// `data` points to `len` readable bytes; `options` is NULL or valid; `out` is a valid pointer.
#[no_mangle]
pub unsafe extern "C" fn brenier_open_memory(
    data: *const u8,
    len: usize,
    options: *const BrenierOpenOptions,
    out: *mut *mut BrenierEngine,
) -> BrenierStatus {
    call(|| {
        non_null(out, "out")?;
        non_null(data, "data")?;
        // SAFETY: the caller's contract.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        let (backend, _) = unsafe { backend_from(options) }?;
        unsafe { finish_open(Bundle::from_bytes(bytes)?, backend, out) }
    })
}

/// # Safety
/// `engine` is NULL or an engine from `brenier_open*` not yet closed.
unsafe fn engine_ref<'a>(engine: *const BrenierEngine) -> Result<&'a Engine, Failure> {
    // SAFETY: the caller's contract.
    unsafe { engine.as_ref() }.map(|e| &e.engine).ok_or_else(|| invalid("engine is NULL"))
}

/// The bundle's image shape: an image is `channels × height × width` floats, in model space
/// ([-1, 1]). Thread-safe.
///
/// # Safety
/// `engine` is a live engine; the three pointers are valid.
#[no_mangle]
pub unsafe extern "C" fn brenier_image_shape(
    engine: *const BrenierEngine,
    channels: *mut u32,
    height: *mut u32,
    width: *mut u32,
) -> BrenierStatus {
    call(|| {
        // SAFETY: the caller's contract.
        let engine = unsafe { engine_ref(engine) }?;
        for (p, what) in [(channels, "channels"), (height, "height"), (width, "width")] {
            non_null(p, what)?;
        }
        let img = engine.bundle().manifest().image;
        // SAFETY: checked non-null; the caller's contract makes them writable.
        unsafe {
            *channels = img.channels as u32;
            *height = img.height as u32;
            *width = img.width as u32;
        }
        Ok(())
    })
}

/// `count` images of `dim` floats: the element count, refused when zero or beyond what a slice
/// can address.
fn image_floats(count: usize, dim: usize) -> Result<usize, Failure> {
    if count == 0 {
        return Err(invalid("count is 0"));
    }
    count
        .checked_mul(dim)
        .filter(|&n| n <= isize::MAX as usize / std::mem::size_of::<f32>())
        .ok_or_else(|| invalid(format!("count {count} × {dim} values per image is more than memory can hold")))
}

/// A buffer argument, refused when NULL or not aligned for f32.
fn buffer(p: *const f32, what: &str) -> Result<(), Failure> {
    non_null(p, what)?;
    if !p.is_aligned() {
        return Err(invalid(format!("{what} is not aligned for float")));
    }
    Ok(())
}

/// # Safety
/// `timings` is NULL (skipped) or writable.
unsafe fn write_timings(timings: *mut BrenierTimings, encode: &NetTime, map_s: f64, decode: &NetTime) {
    // SAFETY: the caller's contract.
    if let Some(t) = unsafe { timings.as_mut() } {
        *t = BrenierTimings {
            encode_s: encode.seconds,
            map_s,
            decode_s: decode.seconds,
            nfe: (encode.nfe + decode.nfe) as u32,
        };
    }
}

/// Translates `count` images `[count, C, H, W]` (f32, model space) from `input` into `output`
/// (the same size, caller-owned; may not overlap `input`). `options` NULL: the defaults.
/// `timings` may be NULL. On failure `output` is left unchanged. Thread-safe on one engine.
///
/// # Safety
/// `engine` is live; `input` and `output` hold `count·C·H·W` floats; `options` and `timings`
/// are NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn brenier_translate(
    engine: *const BrenierEngine,
    input: *const f32,
    count: usize,
    output: *mut f32,
    options: *const BrenierTranslateOptions,
    timings: *mut BrenierTimings,
) -> BrenierStatus {
    call(|| {
        // SAFETY (all below): the caller's contract.
        let engine = unsafe { engine_ref(engine) }?;
        let n = image_floats(count, engine.dim())?;
        buffer(input, "input")?;
        buffer(output, "output")?;
        let x = unsafe { std::slice::from_raw_parts(input, n) };
        let default = brenier_translate_options_default();
        let o = unsafe { options.as_ref() }.unwrap_or(&default);
        // Unset names take the runtime's defaults, the CLI's too.
        let names = unsafe { (opt_str(o.method, "method")?, opt_str(o.from, "from")?) };
        let base = TranslateOptions::named(engine.bundle().manifest(), names.0, names.1)?;
        let opts = TranslateOptions {
            t: (o.t > 0).then_some(o.t as usize),
            steps: (o.steps > 0).then_some(o.steps as usize),
            eta: (o.eta >= 0.0).then_some(o.eta),
            tau: (o.tau > 0.0).then_some(o.tau),
            seed: o.seed,
            ..base
        };
        let r = engine.translate(x, &opts, &Silent)?;
        let out = unsafe { std::slice::from_raw_parts_mut(output, n) };
        out.copy_from_slice(&r.images);
        unsafe { write_timings(timings, &r.encode, r.map.as_ref().map_or(0.0, |m| m.seconds), &r.decode) };
        Ok(())
    })
}

/// Generates `count` images `[count, C, H, W]` into `output` (caller-owned). `options` NULL:
/// the defaults. `timings` may be NULL. On failure `output` is left unchanged. Thread-safe on
/// one engine.
///
/// # Safety
/// `engine` is live; `output` holds `count·C·H·W` floats; `options` and `timings` are NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn brenier_generate(
    engine: *const BrenierEngine,
    count: usize,
    output: *mut f32,
    options: *const BrenierGenerateOptions,
    timings: *mut BrenierTimings,
) -> BrenierStatus {
    call(|| {
        // SAFETY (all below): the caller's contract.
        let engine = unsafe { engine_ref(engine) }?;
        let n = image_floats(count, engine.dim())?;
        buffer(output, "output")?;
        let default = brenier_generate_options_default();
        let o = unsafe { options.as_ref() }.unwrap_or(&default);
        let names = unsafe { (opt_str(o.method, "method")?, opt_str(o.domain, "domain")?) };
        let base = GenerateOptions::named(engine.bundle().manifest(), names.0, names.1)?;
        let opts = GenerateOptions {
            count,
            nfe: if o.nfe == 0 { base.nfe } else { o.nfe as usize },
            eta: o.eta,
            tau: (o.tau > 0.0).then_some(o.tau),
            seed: o.seed,
            ..base
        };
        let g = engine.generate(&opts, &Silent)?;
        let out = unsafe { std::slice::from_raw_parts_mut(output, n) };
        out.copy_from_slice(&g.images);
        unsafe { write_timings(timings, &NetTime::default(), g.map.seconds, &g.decode) };
        Ok(())
    })
}

/// Releases an engine (NULL is ignored). Must not overlap any other call on the same engine;
/// different engines may be closed from different threads at once.
///
/// # Safety
/// `engine` is NULL or an engine from `brenier_open*` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn brenier_close(engine: *mut BrenierEngine) {
    if !engine.is_null() {
        // SAFETY: the caller's contract: a pointer from Box::into_raw, released once.
        let _ = call(|| {
            drop(unsafe { Box::from_raw(engine) });
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests;
