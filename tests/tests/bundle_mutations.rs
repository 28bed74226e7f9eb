//! Systematic corruption of a valid bundle. Every header field and every section-table field is
//! set to 0, its maximum, and off by one (with the checksums recomputed, so the damage reaches
//! the check under test, and once without); sections are moved out of the file, onto each other
//! and off alignment; checksums are flipped; the file is cut at every byte; the manifest gets
//! wrong types, missing keys, huge numbers and overflowing shapes. Each case must end in the
//! expected typed error — never a panic, and never an allocation larger than the file
//! (a tracking allocator records the largest single allocation while the reader runs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use brenier::bundle::format::HEADER_LEN;
use brenier::bundle::Bundle;
use brenier::Error;
use brenier_tests::bundle_edit::{reseal, reseal_header, with_manifest};
use brenier_tests::oracle_bundle;
use serde_json::{json, Value};

// ---- allocation tracking ------------------------------------------------------------------

struct Tracking;

thread_local! {
    // const-initialised, no destructor: safe to touch from inside the allocator.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// What the reader did with one damaged file.
#[derive(Debug)]
enum Outcome {
    /// Rejected at open.
    Open(Error),
    /// Opened; reading this section failed.
    Use(String, Error),
    /// Opened and every section read back.
    Fine,
}

/// Opens `bytes` and reads every section, as `brenier inspect` does, catching panics and
/// checking the largest allocation against the file size (the in-memory copy of the file is
/// the one allocation allowed to reach it; 4 KiB covers the rounding and small bookkeeping).
fn run(case: &str, bytes: &[u8]) -> Outcome {
    LARGEST.with(|l| l.set(0));
    let outcome = catch_unwind(AssertUnwindSafe(|| match Bundle::from_bytes(bytes) {
        Err(e) => Outcome::Open(e),
        Ok(b) => {
            for s in b.sections() {
                if let Err(e) = b.bytes(&s.name) {
                    return Outcome::Use(s.name.clone(), e);
                }
            }
            for map in &b.manifest().ot_maps {
                if let Err(e) = b.ot_map(map) {
                    return Outcome::Use(map.name.clone(), e);
                }
            }
            Outcome::Fine
        }
    }));
    let largest = LARGEST.with(|l| l.get());
    let outcome = outcome.unwrap_or_else(|_| panic!("{case}: the reader panicked"));
    assert!(largest <= bytes.len() + 4096, "{case}: allocated {largest} bytes at once for a {}-byte file", bytes.len());
    outcome
}

fn valid() -> Vec<u8> {
    std::fs::read(&oracle_bundle().0).unwrap()
}

fn open_error(case: &str, bytes: &[u8]) -> Error {
    match run(case, bytes) {
        Outcome::Open(e) => e,
        other => panic!("{case}: expected rejection at open, got {other:?}"),
    }
}

// ---- header -------------------------------------------------------------------------------

/// Header integer fields: (name, offset, width in bytes).
const HEADER_FIELDS: &[(&str, usize, usize)] = &[
    ("version", 8, 4),
    ("section_count", 12, 4),
    ("file_len", 16, 8),
    ("table_offset", 24, 8),
    ("table_crc", 32, 4),
    ("header_crc", 60, 4),
];

fn read_uint(b: &[u8], at: usize, width: usize) -> u64 {
    let mut a = [0u8; 8];
    a[..width].copy_from_slice(&b[at..at + width]);
    u64::from_le_bytes(a)
}

fn write_uint(b: &mut [u8], at: usize, width: usize, v: u64) {
    b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// 0, the field's maximum, and ±1 around the current value (wrapping), minus the no-ops.
fn edge_values(current: u64, width: usize) -> Vec<(String, u64)> {
    let max = if width == 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 };
    let mut v = vec![
        ("0".to_string(), 0),
        ("max".to_string(), max),
        ("+1".to_string(), current.wrapping_add(1) & max),
        ("-1".to_string(), current.wrapping_sub(1) & max),
    ];
    v.retain(|(_, x)| *x != current);
    v
}

#[test]
fn every_header_field_at_its_edges() {
    let good = valid();
    let mut cases = 0;
    for &(field, at, width) in HEADER_FIELDS {
        let current = read_uint(&good, at, width);
        for (label, value) in edge_values(current, width) {
            for sealed in [true, false] {
                if field == "header_crc" && sealed {
                    continue; // resealing would undo the edit
                }
                let mut b = good.clone();
                write_uint(&mut b, at, width, value);
                if sealed {
                    reseal_header(&mut b);
                }
                let case = format!("header {field} = {label} ({value}){}", if sealed { ", resealed" } else { "" });
                let e = open_error(&case, &b);
                let ok = match (field, sealed) {
                    // The version is judged before the checksum so "upgrade" reaches the user.
                    ("version", _) if value > 1 => {
                        matches!(e, Error::UnsupportedVersion { found, .. } if found as u64 == value)
                    }
                    ("version", _) => matches!(e, Error::Corrupted { ref what } if what.contains("version 0")),
                    (_, false) => matches!(e, Error::Checksum { ref section, .. } if section == "header"),
                    ("section_count", true) if value == 0 || value > 256 => {
                        matches!(e, Error::Corrupted { ref what } if what.contains("section count"))
                    }
                    // A different count reads a different table: its checksum no longer matches,
                    // or the table runs past the file.
                    ("section_count", true) => {
                        matches!(
                            e,
                            Error::Checksum { ref section, .. } if section == "section table"
                        ) || matches!(e, Error::Truncated { ref what, .. } if what == "section table")
                    }
                    ("file_len", true) if value > good.len() as u64 => {
                        matches!(e, Error::Truncated { ref what, needed, .. } if what == "file" && needed == value)
                    }
                    ("file_len", true) => {
                        matches!(e, Error::Corrupted { ref what } if what.contains("after its recorded end"))
                    }
                    ("table_offset", true) => {
                        matches!(e, Error::Corrupted { ref what } if what.contains("table offset"))
                    }
                    ("table_crc", true) => {
                        matches!(e, Error::Checksum { ref section, .. } if section == "section table")
                    }
                    _ => false,
                };
                assert!(ok, "{case}: wrong error {e:?}");
                cases += 1;
            }
        }
    }
    // Magic and the reserved bytes.
    for i in 0..8 {
        let mut b = good.clone();
        b[i] ^= 0x20;
        assert!(matches!(open_error("magic", &b), Error::NotABundle { .. }));
        cases += 1;
    }
    for i in 36..60 {
        let mut b = good.clone();
        b[i] = 0xff;
        reseal_header(&mut b);
        let e = open_error("reserved", &b);
        assert!(matches!(e, Error::Corrupted { ref what } if what.contains("reserved")), "reserved byte {i}: {e:?}");
        cases += 1;
    }
    println!("header: {cases} corruptions, each the expected typed error");
}

// ---- section table ------------------------------------------------------------------------

/// Row integer fields: (name, offset in the row, width).
const ROW_FIELDS: &[(&str, usize, usize)] = &[
    ("kind", 32, 4),
    ("dtype", 36, 4),
    ("rank", 40, 4),
    ("crc", 44, 4),
    ("offset", 48, 8),
    ("len", 56, 8),
    ("shape[0]", 64, 8),
    ("shape[1]", 72, 8),
    ("shape[2]", 80, 8),
    ("shape[3]", 88, 8),
];

fn row_at(row: usize) -> usize {
    HEADER_LEN + 128 * row
}

/// Applies `edit` to one row, reseals table and header, and runs the reader.
fn edit_row(good: &[u8], row: usize, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut b = good.to_vec();
    edit(&mut b[row_at(row)..row_at(row) + 128]);
    reseal(&mut b);
    b
}

/// The error names the section (or its table row when the name itself is what broke).
fn names(e: &Error, name: &str, row: usize) -> bool {
    let text = e.to_string();
    text.contains(&format!("`{name}`"))
        || text.contains(&format!("section `{name}`"))
        || text.contains(&format!("row {row}"))
        || matches!(e, Error::Checksum { section, .. } | Error::Section { section, .. } if section == name)
        || matches!(e, Error::MissingSection(s) if s == name)
        || matches!(e, Error::Truncated { what, .. } if what.contains(name))
}

#[test]
fn every_table_field_at_its_edges() {
    let good = valid();
    let b = Bundle::from_bytes(&good).unwrap();
    let entries = b.sections().to_vec();
    let mut cases = 0;
    for (row, entry) in entries.iter().enumerate() {
        for &(field, at, width) in ROW_FIELDS {
            let current = read_uint(&good, row_at(row) + at, width);
            for (label, value) in edge_values(current, width) {
                let bytes = edit_row(&good, row, |r| write_uint(r, at, width, value));
                let case = format!("row {row} `{}` {field} = {label} ({value})", entry.name);
                let outcome = run(&case, &bytes);
                let e = match &outcome {
                    Outcome::Open(e) => e,
                    // A flipped payload checksum is found when the payload is first read (the
                    // manifest's at open, every other section's at use).
                    Outcome::Use(section, e) if field == "crc" => {
                        assert_eq!(section, &entry.name, "{case}");
                        e
                    }
                    other => panic!("{case}: expected an error, got {other:?}"),
                };
                assert!(names(e, &entry.name, row), "{case}: error does not name the section: {e}");
                let text = e.to_string();
                let ok = match field {
                    "crc" => matches!(e, Error::Checksum { .. }),
                    "kind" | "dtype" => {
                        text.contains("unknown") || text.contains("needs") || matches!(e, Error::Section { .. })
                    }
                    "rank" => text.contains("rank") || text.contains("reserved") || text.contains("needs"),
                    "offset" if value % 64 != 0 => text.contains("aligned"),
                    "offset" if value < 64 + 128 * entries.len() as u64 => text.contains("header/table"),
                    "offset" => text.contains("overlap") || matches!(e, Error::Truncated { .. }),
                    "len" | "shape[0]" | "shape[1]" | "shape[2]" | "shape[3]" => {
                        text.contains("needs") || text.contains("overflows") || text.contains("reserved")
                    }
                    _ => false,
                };
                assert!(ok, "{case}: wrong error {e:?}");
                cases += 1;
            }
        }
        // Names: empty, unprintable, a duplicate of another row, unknown to the manifest.
        let other = &entries[(row + 1) % entries.len()].name;
        let renames: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![0u8; 32]),
            ("unprintable", b"net\x07a".to_vec()),
            ("duplicate", other.as_bytes().to_vec()),
            ("unknown", b"renamed".to_vec()),
        ];
        for (label, name) in renames {
            let bytes = edit_row(&good, row, |r| {
                r[..32].fill(0);
                r[..name.len()].copy_from_slice(&name);
            });
            let case = format!("row {row} `{}` name {label}", entry.name);
            let e = open_error(&case, &bytes);
            let ok = match label {
                "empty" | "unprintable" => text_has(&e, &format!("row {row}")),
                "duplicate" => text_has(&e, "appears twice"),
                _ => matches!(e, Error::MissingSection(ref s) if *s == entry.name),
            };
            assert!(ok, "{case}: wrong error {e:?}");
            cases += 1;
        }
        // Reserved bytes of the row.
        let bytes = edit_row(&good, row, |r| r[127] = 1);
        assert!(text_has(&open_error("row reserved", &bytes), "reserved"));
        cases += 1;
    }
    println!("section table: {cases} corruptions over {} rows, each the expected typed error", entries.len());
}

fn text_has(e: &Error, needle: &str) -> bool {
    e.to_string().contains(needle)
}

#[test]
fn sections_moved_out_overlapping_and_misaligned() {
    let good = valid();
    let b = Bundle::from_bytes(&good).unwrap();
    let entries = b.sections().to_vec();
    let file_len = good.len() as u64;
    let set_offset = |row: usize, off: u64| edit_row(&good, row, |r| r[48..56].copy_from_slice(&off.to_le_bytes()));
    for (row, e) in entries.iter().enumerate() {
        // Past the end of the file, and straddling it.
        for off in [file_len.next_multiple_of(64), (file_len - e.len / 2).next_multiple_of(64), u64::MAX - 63] {
            if off == e.offset {
                continue;
            }
            let err = open_error("moved out", &set_offset(row, off));
            assert!(
                matches!(err, Error::Truncated { ref what, .. } if what.contains(&e.name))
                    || text_has(&err, "overlap")
                    || text_has(&err, "overflows"),
                "{} at {off}: {err:?}",
                e.name
            );
        }
        // Onto every other section.
        for other in entries.iter().filter(|o| o.name != e.name) {
            // An overlap — or, moved onto a section near the end, running past the file.
            let err = open_error("overlap", &set_offset(row, other.offset));
            assert!(
                text_has(&err, "overlap") && text_has(&err, &e.name)
                    || matches!(err, Error::Truncated { ref what, .. } if what.contains(&e.name)),
                "{} onto {}: {err:?}",
                e.name,
                other.name
            );
        }
        // Off alignment by every amount below 64 that stays inside the file.
        for delta in [1u64, 2, 4, 8, 32, 63] {
            let err = open_error("misaligned", &set_offset(row, e.offset + delta));
            assert!(
                matches!(err, Error::Section { ref section, ref problem } if *section == e.name && problem.contains("aligned")),
                "{err:?}"
            );
        }
    }
}

#[test]
fn flipped_bits_in_every_payload_fail_that_sections_checksum() {
    let good = valid();
    let b = Bundle::from_bytes(&good).unwrap();
    for e in b.sections() {
        for at in [e.offset, e.offset + e.len / 2, e.offset + e.len - 1] {
            for bit in [0x01u8, 0x80] {
                let mut bytes = good.clone();
                bytes[at as usize] ^= bit;
                let case = format!("`{}` byte {at} bit {bit:#x}", e.name);
                let err = match run(&case, &bytes) {
                    Outcome::Open(err) => err,
                    Outcome::Use(section, err) => {
                        assert_eq!(section, e.name, "{case}");
                        err
                    }
                    Outcome::Fine => panic!("{case}: damage went unnoticed"),
                };
                assert!(matches!(err, Error::Checksum { ref section, .. } if *section == e.name), "{case}: {err:?}");
            }
        }
    }
}

#[test]
fn truncation_at_every_byte_and_trailing_garbage() {
    let good = valid();
    for cut in 0..good.len() {
        let e = open_error(&format!("cut at {cut}"), &good[..cut]);
        assert!(matches!(e, Error::Truncated { actual, .. } if actual == cut as u64), "cut at {cut}: {e:?}");
    }
    for extra in [1usize, 7, 64, 4096] {
        let mut b = good.clone();
        b.extend(std::iter::repeat_n(0xA5, extra));
        let e = open_error("trailing", &b);
        assert!(text_has(&e, &format!("{extra} bytes after its recorded end")), "{e:?}");
    }
    println!("truncation: {} cut points, each Truncated", good.len());
}

// ---- manifest -----------------------------------------------------------------------------

fn manifest_json(bundle: &[u8]) -> Value {
    let b = Bundle::from_bytes(bundle).unwrap();
    serde_json::from_slice(&b.manifest().to_json()).unwrap()
}

/// Every path to a value in `v` (objects by key, arrays by index), outside `provenance`, which
/// is free-form by design.
fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if prefix.is_empty() && k == "provenance" {
                    continue;
                }
                let mut p = prefix.clone();
                p.push(k.clone());
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|p| format!("/{p}")).collect()
}

/// Keys a manifest may leave out (serde defaults): everything else is mandatory.
fn optional(path: &[String]) -> bool {
    let last = path.last().map(String::as_str).unwrap_or("");
    path.len() == 1 && last == "ot_maps"
        || path.len() == 3 && path[0] == "nets" && (last == "fp16" || last == "batch")
        || path.len() == 4 && path[0] == "nets" && path[2] == "fp16"
}

#[test]
fn manifest_wrong_types_missing_keys_and_huge_numbers() {
    let good = valid();
    let base = manifest_json(&good);
    let mut all = vec![];
    paths(&base, vec![], &mut all);
    let replacements: Vec<(&str, Value)> = vec![
        ("a string", json!("five hundred")),
        ("null", Value::Null),
        ("an array", json!([1, 2])),
        ("an object", json!({"x": 1})),
        ("true", json!(true)),
        ("-1", json!(-1)),
        ("1e300", json!(1e300)),
        ("u64::MAX", json!(u64::MAX)),
        ("0", json!(0)),
    ];
    let (mut rejected, mut accepted) = (0, 0);
    for path in &all {
        let ptr = pointer(path);
        let (parent_ptr, key) = ptr.rsplit_once('/').unwrap();
        // Removal.
        let mut m = base.clone();
        match m.pointer_mut(parent_ptr).unwrap() {
            Value::Object(o) => {
                o.remove(key);
            }
            Value::Array(a) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            _ => unreachable!(),
        }
        let outcome = run(&format!("{ptr} removed"), &with_manifest(&good, m.to_string().as_bytes()));
        let is_array_element = key.parse::<usize>().is_ok();
        match outcome {
            Outcome::Open(Error::Manifest(_)) => rejected += 1,
            Outcome::Fine if optional(path) || is_array_element => accepted += 1,
            other => panic!("{ptr} removed: expected a manifest error, got {other:?}"),
        }
        // Replacements: a typed error, or (where the value happens to be legal) a bundle that
        // opens and reads back completely.
        for (label, value) in &replacements {
            let mut m = base.clone();
            let slot = m.pointer_mut(&ptr).unwrap();
            if slot == value {
                continue;
            }
            *slot = value.clone();
            let case = format!("{ptr} = {label}");
            match run(&case, &with_manifest(&good, m.to_string().as_bytes())) {
                Outcome::Open(Error::Manifest(_) | Error::Section { .. } | Error::MissingSection(_)) => rejected += 1,
                Outcome::Fine => accepted += 1,
                other => panic!("{case}: {other:?}"),
            }
        }
    }
    println!(
        "manifest: {} paths, {rejected} edits rejected with a typed error, {accepted} legal edits accepted",
        all.len()
    );
    assert!(rejected > 5 * all.len(), "the sweep rejected only {rejected} edits: is it editing anything?");
}

#[test]
fn manifest_edits_that_must_be_refused_name_the_problem() {
    let good = valid();
    let base = manifest_json(&good);
    let refuse = |edit: &dyn Fn(&mut Value), needle: &str| {
        let mut m = base.clone();
        edit(&mut m);
        let e = open_error(needle, &with_manifest(&good, m.to_string().as_bytes()));
        assert!(text_has(&e, needle), "`{needle}` not in: {e}");
    };
    refuse(&|m| m["t_encode"] = json!("five hundred"), "invalid JSON at `t_encode`: invalid type");
    refuse(&|m| m["nets"]["b"]["fp16"]["max_rel_err"] = json!(1e300), "at `nets.b.fp16.max_rel_err`");
    refuse(&|m| m["image"]["height"] = json!(1u64 << 40), "exceeds");
    // Product of the image dimensions overflows usize: caught before any multiplication.
    refuse(&|m| m["image"] = json!({"channels": 1u64 << 32, "height": 1u64 << 32, "width": 1u64 << 32}), "exceeds");
    refuse(&|m| m["image"]["width"] = json!(0), "zero dimension");
    refuse(&|m| m["t_encode"] = json!(u64::MAX), "must be below n_train");
    refuse(&|m| m["steps"] = json!(u64::MAX), "steps");
    refuse(&|m| m["steps"] = json!(0), "steps 0");
    refuse(&|m| m["eta"] = json!(1e300), "at `eta`: number out of range");
    refuse(&|m| m["normalization"]["low"] = json!(2.0), "low < high");
    refuse(&|m| m["schedule"]["n_train"] = json!(u64::MAX), "steps, expected 1..=100000");
    refuse(&|m| m["schedule"] = json!({"kind": "betas", "betas": []}), "0 steps");
    refuse(&|m| m["schedule"] = json!({"kind": "betas", "betas": vec![0.5; 200]}), "ᾱ");
    refuse(&|m| m["schedule"]["beta_end"] = json!(1.5), "(0, 1)");
    refuse(&|m| m["schedule"]["kind"] = json!("cosine"), "unknown variant");
    refuse(&|m| m["nets"]["a"]["batch"] = json!(0), "batch of 0");
    refuse(&|m| m["nets"]["a"]["section"] = json!("net.zzz"), "net.zzz");
    refuse(&|m| m["nets"]["b"]["section"] = json!("ot.heights.0"), "must be ONNX");
    refuse(&|m| m["ot_maps"][0]["count"] = json!(u64::MAX), "heights of map");
    refuse(&|m| m["ot_maps"][0]["count"] = json!(0), "no targets");
    refuse(&|m| m["ot_maps"][0]["target"] = json!("c"), "unknown domain");
    refuse(
        &|m| m["ot_maps"][0]["source"] = json!({"kind": "domain", "domain": "q"}),
        "at `ot_maps[0].source`: unknown domain `q`",
    );
    refuse(&|m| m["ot_maps"][0]["t"] = json!(1000), "beyond n_train");
    refuse(&|m| m["ot_maps"][0]["targets"] = json!("net.a"), "must be f16");
    refuse(&|m| m["ot_maps"][0]["heights"] = json!("ot.targets.0"), "must be f32");
    // Not JSON at all, and JSON nested past the parser's recursion limit.
    for text in [&b"{\"schedule\": "[..], b"\xff\xfe", &[b'['; 100_000][..]] {
        let e = open_error("not json", &with_manifest(&good, text));
        assert!(matches!(e, Error::Manifest(ref s) if s.contains("invalid JSON")), "{e:?}");
    }
}

#[test]
fn the_allocation_tracker_sees_the_readers_copy() {
    // `from_bytes` copies the file into an aligned buffer: the tracker must record at least
    // that much, or the bound asserted in `run` would be vacuous.
    let good = valid();
    LARGEST.with(|l| l.set(0));
    let b = Bundle::from_bytes(&good).unwrap();
    assert!(LARGEST.with(|l| l.get()) >= good.len());
    drop(b);
}
