//! `brenier export --images-a DIR --images-b DIR` through the real binary, on the torch-exported
//! 3-channel UNet fixture (tests/fixtures/unet, 3×16×16, attention, int64 t): image folders of PNG
//! and JPEG end to end; a run killed while encoding resumes and writes the same bundle as an
//! uninterrupted one; bad inputs are typed errors that leave no bundle.

mod common;

use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};

use brenier::bundle::{Bundle, ImageSpec, Normalization};
use brenier::io::image::{encode, Format};
use brenier::rng::NoiseStream;
use common::{brenier, fails_with, s};

const IMG: ImageSpec = ImageSpec { channels: 3, height: 16, width: 16 };

fn unet() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/unet/unet_t_int64.onnx")
}

/// `n` images in `dir`: smooth colour patterns (a domain-specific hue plus seeded waves).
fn images(dir: &Path, n: usize, hue: f32, format: Format, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let ext = if format == Format::Png { "png" } else { "jpg" };
    for i in 0..n {
        let z = NoiseStream::new(seed, i as u64).normal(6);
        let x: Vec<f32> = (0..IMG.elems())
            .map(|k| {
                let (c, y, x) = (k / 256, (k / 16) % 16, k % 16);
                let wave = (z[c] * y as f32 * 0.3 + z[3 + c] * x as f32 * 0.3).sin();
                (0.5 * wave + hue * (c as f32 - 1.0)).clamp(-1.0, 1.0)
            })
            .collect();
        // Sub-folders too: the exporter searches folders recursively.
        let sub = dir.join(if i % 2 == 0 { "even" } else { "odd" });
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("{i:04}.{ext}")),
            encode(&x, IMG, Normalization::default(), &[], format).unwrap(),
        )
        .unwrap();
    }
    dir.to_path_buf()
}

/// `brenier export` of the fixture UNet as both networks with test-sized defaults (96 targets,
/// DDIM-encoded in 6 steps, so the network runs through the whole path, tol 0.2, maps a->b and noise->b); a flag in `extra` replaces its default.
fn export_args<'a>(a: &'a Path, b: &'a Path, out: &'a Path, work: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["export", "--net-a", unet(), "--net-b", unet(), "--images-a", s(a), "--images-b", s(b)];
    let defaults = [
        ("--num-targets", "96"),
        ("--targets-kind", "encoded"),
        ("--encode-steps", "6"),
        ("--tol", "0.2"),
        ("--threads", "2"),
        ("--maps", "a->b,noise->b"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            v.extend_from_slice(&[flag, value]);
        }
    }
    v.extend_from_slice(&["--work-dir", s(work), "-o", s(out)]);
    v.extend_from_slice(extra);
    v
}

#[test]
fn png_and_jpeg_folders_export_end_to_end_and_translate() {
    let dir = tempfile::tempdir().unwrap();
    let a = images(&dir.path().join("a"), 160, 0.4, Format::Png, 1);
    let b = images(&dir.path().join("b"), 120, -0.4, Format::Jpeg, 2);
    let out = dir.path().join("unet.brn");
    let (ok, text) = brenier(&export_args(&a, &b, &out, &dir.path().join("work"), &[]));
    assert!(ok, "{text}");
    assert!(text.contains("read 160 images of a and 120 of b"), "{text}");
    let bundle = Bundle::open(&out).unwrap();
    let m = bundle.manifest();
    assert_eq!(m.image, IMG);
    for map in &m.ot_maps {
        let r = map.solve.as_ref().unwrap();
        assert!(r.certified && r.targets.contains("DDIM-encoded"), "{}: {r}", map.name);
    }
    let (ok, text) = brenier(&["inspect", s(&out)]);
    assert!(ok && text.contains("solve: certified"), "{text}");
    // JPEG in, JPEG out.
    let one = dir.path().join("b/even/0000.jpg");
    let jpg = dir.path().join("t.jpg");
    let (ok, text) =
        brenier(&["translate", "--bundle", s(&out), "--steps", "3", "--input", s(&one), "--output", s(&jpg)]);
    assert!(ok, "{text}");
    assert_eq!(&std::fs::read(&jpg).unwrap()[..3], &[0xFF, 0xD8, 0xFF]);
}

#[test]
fn an_export_killed_while_encoding_resumes_to_the_same_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let a = images(&dir.path().join("a"), 100, 0.4, Format::Png, 3);
    let b = images(&dir.path().join("b"), 260, -0.4, Format::Png, 4);
    let (work, out) = (dir.path().join("work"), dir.path().join("resumed.brn"));
    // 256 targets: four chunks of 64 to encode; kill after the first is on disk.
    let args = export_args(&a, &b, &out, &work, &["--num-targets", "256", "--encode-steps", "20"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_brenier"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let chunk = |n: usize| {
        std::fs::read_dir(&work)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().is_dir() && e.path().join(format!("chunk-{n:05}.npy")).exists())
    };
    while !chunk(0) {
        assert!(child.try_wait().unwrap().is_none(), "the export ended before its first chunk");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!chunk(3) && !out.exists(), "the kill came too late to test a resume");
    let (ok, text) = brenier(&args);
    assert!(ok, "{text}");
    // An uninterrupted run with its own work folder.
    let (work2, out2) = (dir.path().join("work2"), dir.path().join("whole.brn"));
    let (ok, text) = brenier(&export_args(&a, &b, &out2, &work2, &["--num-targets", "256", "--encode-steps", "20"]));
    assert!(ok, "{text}");
    let (r, w) = (Bundle::open(&out).unwrap(), Bundle::open(&out2).unwrap());
    for e in r.sections().iter().filter(|e| e.name != "manifest") {
        assert_eq!(r.bytes(&e.name).unwrap(), w.bytes(&e.name).unwrap(), "section {} differs", e.name);
    }
    // The manifests differ only in when they were made and how long the solves took.
    let strip = |b: &Bundle| {
        let mut v = serde_json::to_value(b.manifest()).unwrap();
        v["provenance"]["created_unix"] = 0.into();
        for map in v["ot_maps"].as_array_mut().unwrap() {
            map["solve"]["seconds"] = 0.into();
        }
        v
    };
    assert_eq!(strip(&r), strip(&w));
}

#[test]
fn bad_image_inputs_are_named_and_leave_no_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let a = images(&dir.path().join("a"), 40, 0.4, Format::Png, 5);
    let b = images(&dir.path().join("b"), 40, -0.4, Format::Png, 6);
    let out = dir.path().join("never.brn");
    let work = dir.path().join("work");
    let run = |a: &Path, b: &Path, extra: &[&str], needles: &[&str]| {
        let mut flags = vec!["--num-targets", "32"];
        if extra.contains(&"--num-targets") {
            flags.clear();
        }
        flags.extend_from_slice(extra);
        fails_with(&export_args(a, b, &out, &work, &flags), needles, Some(&out));
    };
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    run(&a, &empty, &[], &["empty", "holds no .png, .jpg or .jpeg files"]);
    run(&a, &b, &["--num-targets", "41"], &["needs 41 target images of b", "holds 40"]);
    // A corrupt JPEG, named; --skip-bad leaves it out.
    let bad = images(&dir.path().join("bad"), 40, -0.4, Format::Png, 7);
    std::fs::write(bad.join("broken.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 74, 70]).unwrap();
    run(&a, &bad, &[], &["broken.jpg", "JPEG"]);
    let (ok, text) =
        brenier(&export_args(&a, &bad, &out, &work, &["--num-targets", "32", "--skip-bad", "--maps", "a->b"]));
    assert!(ok && text.contains("skipped 1 unreadable image file"), "{text}");
    std::fs::remove_file(&out).unwrap();
    // Another size: named with both sizes, unless --resize.
    let big = dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..40 {
        let x = vec![0.1f32; 3 * 24 * 20];
        let img = ImageSpec { channels: 3, height: 24, width: 20 };
        std::fs::write(
            big.join(format!("{i}.png")),
            encode(&x, img, Normalization::default(), &[], Format::Png).unwrap(),
        )
        .unwrap();
    }
    run(&a, &big, &[], &["[16, 16]", "[24, 20]", "--resize"]);
    let args = export_args(&a, &big, &out, &work, &["--num-targets", "32", "--resize", "--maps", "a->b"]);
    let (ok, text) = brenier(&args);
    assert!(ok, "{text}");
}

/// The work folder on a file system that fills up: the export fails saying so and writes no bundle.
#[test]
fn a_full_work_folder_is_a_typed_error() {
    let Some(fs) = brenier_tests::faults::SmallFs::mount_or_skip(64, "a_full_work_folder_is_a_typed_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = images(&dir.path().join("a"), 100, 0.4, Format::Png, 8);
    let b = images(&dir.path().join("b"), 200, -0.4, Format::Png, 9);
    let out = dir.path().join("never.brn");
    let args = export_args(&a, &b, &out, fs.path(), &["--num-targets", "200"]);
    fails_with(&args, &["no space left"], Some(&out));
}

/// Without `--targets-kind` the targets are forward-noised (no network evaluations); an unknown
/// kind is refused naming the choices.
#[test]
fn targets_are_forward_noised_by_default_and_an_unknown_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = images(&dir.path().join("a"), 40, 0.4, Format::Png, 10);
    let b = images(&dir.path().join("b"), 40, -0.4, Format::Png, 11);
    let (out, work) = (dir.path().join("forward.brn"), dir.path().join("work"));
    let mut args = export_args(&a, &b, &out, &work, &["--num-targets", "32", "--maps", "a->b"]);
    let at = args.iter().position(|f| *f == "--targets-kind").unwrap();
    args.drain(at..at + 2);
    let (ok, text) = brenier(&args);
    assert!(ok, "{text}");
    let bundle = Bundle::open(&out).unwrap();
    let solve = bundle.manifest().ot_maps[0].solve.as_ref().unwrap();
    assert!(solve.certified && solve.targets.contains("forward-noised"), "{solve}");
    let bad = dir.path().join("never.brn");
    let args = export_args(&a, &b, &bad, &work, &["--num-targets", "32", "--targets-kind", "latent"]);
    fails_with(&args, &["latent", "expected encoded or forward"], Some(&bad));
}
