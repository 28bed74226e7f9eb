//! The C functions called as C calls them: bad arguments and bad files give a status and a
//! message, never a panic; a failed call leaves the output alone; one engine serves threads.

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};

use super::*;

fn demo() -> CString {
    CString::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo.brn")).unwrap()
}

fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated, valid until the next call on this thread.
    unsafe { CStr::from_ptr(brenier_last_error()) }.to_string_lossy().into_owned()
}

fn open(options: *const BrenierOpenOptions) -> (BrenierStatus, *mut BrenierEngine) {
    let mut e = null_mut();
    // SAFETY: valid arguments.
    let s = unsafe { brenier_open(demo().as_ptr(), options, &mut e) };
    (s, e)
}

fn shape(e: *const BrenierEngine) -> usize {
    let (mut c, mut h, mut w) = (0, 0, 0);
    // SAFETY: a live engine and valid pointers.
    assert_eq!(unsafe { brenier_image_shape(e, &mut c, &mut h, &mut w) }, BrenierStatus::Ok);
    (c * h * w) as usize
}

#[test]
fn bad_arguments_and_files_give_a_status_and_a_message() {
    let mut e = null_mut();
    // SAFETY (all calls): the arguments are what each case says, never dangling.
    assert_eq!(unsafe { brenier_open(null(), null(), &mut e) }, BrenierStatus::InvalidArgument);
    assert!(last_error().contains("path is NULL"), "{}", last_error());
    let missing = CString::new("/nonexistent/x.brn").unwrap();
    assert_eq!(unsafe { brenier_open(missing.as_ptr(), null(), &mut e) }, BrenierStatus::Io);
    assert!(last_error().contains("/nonexistent/x.brn"), "{}", last_error());
    let bytes = std::fs::read(demo().to_str().unwrap()).unwrap();
    assert_eq!(unsafe { brenier_open_memory(bytes.as_ptr(), 100, null(), &mut e) }, BrenierStatus::Bundle);
    assert!(last_error().contains("truncated"), "{}", last_error());
    let gpu = CString::new("gpu").unwrap();
    let o = BrenierOpenOptions { backend: gpu.as_ptr(), ..brenier_open_options_default() };
    assert_eq!(open(&o).0, BrenierStatus::InvalidArgument);
    assert!(last_error().contains("backend `gpu`"), "{}", last_error());
    assert!(e.is_null(), "a failed open wrote an engine");
    unsafe { brenier_close(null_mut()) };

    // From memory: the bytes are copied, so the caller's buffer can go at once.
    let mut e = null_mut();
    assert_eq!(unsafe { brenier_open_memory(bytes.as_ptr(), bytes.len(), null(), &mut e) }, BrenierStatus::Ok);
    drop(bytes);
    let d = shape(e);
    let x = vec![0.25f32; d];
    let mut y = vec![7.0f32; d];
    for (count, out, why) in [(0, y.as_mut_ptr(), "count is 0"), (usize::MAX, y.as_mut_ptr(), "more than memory")] {
        assert_eq!(
            unsafe { brenier_translate(e, x.as_ptr(), count, out, null(), null_mut()) },
            BrenierStatus::InvalidArgument
        );
        assert!(last_error().contains(why), "{}", last_error());
    }
    assert_eq!(
        unsafe { brenier_translate(e, x.as_ptr(), 1, null_mut(), null(), null_mut()) },
        BrenierStatus::InvalidArgument
    );
    assert!(last_error().contains("output is NULL"), "{}", last_error());
    assert_eq!(unsafe { brenier_generate(e, 0, y.as_mut_ptr(), null(), null_mut()) }, BrenierStatus::InvalidArgument);
    let mut c = 0;
    assert_eq!(unsafe { brenier_image_shape(e, &mut c, null_mut(), &mut c) }, BrenierStatus::InvalidArgument);
    assert_eq!(unsafe { brenier_image_shape(null(), &mut c, &mut c, &mut c) }, BrenierStatus::InvalidArgument);
    assert!(last_error().contains("engine is NULL"), "{}", last_error());
    assert_eq!(unsafe { brenier_translate(e, x.as_ptr(), 1, y.as_mut_ptr(), null(), null_mut()) }, BrenierStatus::Ok);
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 7.0));
    unsafe { brenier_close(e) };
}

#[test]
fn a_failed_translation_leaves_the_output_alone() {
    let (s, e) = open(null());
    assert_eq!(s, BrenierStatus::Ok, "{}", last_error());
    assert_eq!(last_error(), "");
    let d = shape(e);
    let mut x = vec![0.1f32; 2 * d];
    let mut y = vec![7.0f32; 2 * d];
    x[d + 5] = f32::NAN;
    // SAFETY (all calls): buffers of 2·d floats, a live engine.
    let st = unsafe { brenier_translate(e, x.as_ptr(), 2, y.as_mut_ptr(), null(), null_mut()) };
    assert_eq!(st, BrenierStatus::NonFinite, "{}", last_error());
    assert!(y.iter().all(|&v| v == 7.0));
    x[d + 5] = 0.1;
    let magic = CString::new("magic").unwrap();
    let o = BrenierTranslateOptions { method: magic.as_ptr(), ..brenier_translate_options_default() };
    assert_eq!(
        unsafe { brenier_translate(e, x.as_ptr(), 2, y.as_mut_ptr(), &o, null_mut()) },
        BrenierStatus::InvalidArgument
    );
    assert!(last_error().contains("magic"), "{}", last_error());
    let z = CString::new("zebra").unwrap();
    let o = BrenierTranslateOptions { from: z.as_ptr(), ..brenier_translate_options_default() };
    assert_eq!(
        unsafe { brenier_translate(e, x.as_ptr(), 2, y.as_mut_ptr(), &o, null_mut()) },
        BrenierStatus::InvalidArgument
    );
    assert!(last_error().contains("unknown domain `zebra`"), "{}", last_error());
    assert_eq!(
        unsafe { brenier_translate(e, null(), 2, y.as_mut_ptr(), null(), null_mut()) },
        BrenierStatus::InvalidArgument
    );
    assert!(y.iter().all(|&v| v == 7.0));
    unsafe { brenier_close(e) };
}

#[test]
fn one_engine_serves_two_threads_with_the_bits_of_one() {
    let (s, e) = open(null());
    assert_eq!(s, BrenierStatus::Ok, "{}", last_error());
    // A second engine for the one-thread reference, so the two threads below meet the first
    // engine cold and race to prepare its networks.
    let (s, reference) = open(null());
    assert_eq!(s, BrenierStatus::Ok, "{}", last_error());
    let d = shape(e);
    let x: Vec<f32> = (0..3 * d).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let translate = |e: usize| {
        let o = BrenierTranslateOptions { steps: 3, ..brenier_translate_options_default() };
        let mut y = vec![0f32; 3 * d];
        let mut t = BrenierTimings::default();
        // SAFETY: a live engine shared read-only, buffers of 3·d floats.
        let st = unsafe { brenier_translate(e as *const _, x.as_ptr(), 3, y.as_mut_ptr(), &o, &mut t) };
        assert_eq!(st, BrenierStatus::Ok, "{}", last_error());
        assert_eq!(t.nfe, 6);
        y
    };
    // The address crosses threads as an integer, as a C caller's pointer would.
    let shared = e as usize;
    let alone = translate(reference as usize);
    let (one, two) = std::thread::scope(|s| {
        let a = s.spawn(|| translate(shared));
        let b = s.spawn(|| translate(shared));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(alone.iter().all(|v| v.is_finite()));
    assert_eq!(one, alone);
    assert_eq!(two, alone);
    let mut g = vec![0f32; 2 * d];
    let mut t = BrenierTimings::default();
    // SAFETY: a live engine, a buffer of 2·d floats.
    let st = unsafe { brenier_generate(e, 2, g.as_mut_ptr(), null(), &mut t) };
    assert_eq!(st, BrenierStatus::Ok, "{}", last_error());
    assert_eq!(t.nfe, 10);
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0));
    unsafe { brenier_close(e) };
    unsafe { brenier_close(reference) };
}
