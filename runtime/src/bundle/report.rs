//! A bundle described as JSON: its sections with their checksum status, the manifest and the
//! calibration record. `brenier inspect --json` prints it; the Python package's
//! `Bundle.inspect()` returns it as a dict.

use serde_json::{json, Value};

use super::Bundle;

impl Bundle {
    /// Every section is verified against its checksum; a bad one is reported, not raised, so
    /// the report of a damaged bundle still shows what is wrong where.
    pub fn report(&self) -> Value {
        let sections: Vec<Value> = self
            .sections()
            .iter()
            .map(|s| {
                let status = self.verify(&s.name).map_err(|e| e.to_string());
                json!({
                    "name": s.name, "kind": s.kind, "dtype": s.dtype, "shape": s.shape,
                    "offset": s.offset, "bytes": s.len, "crc32": format!("{:08x}", s.crc),
                    "checksum_ok": status.is_ok(), "error": status.err(),
                })
            })
            .collect();
        let calibration = self.calibration();
        json!({
            "format_version": self.header().version,
            "file_bytes": self.file_len(),
            "sections": sections,
            "manifest": self.manifest(),
            "calibration": calibration.as_ref().ok().cloned().flatten(),
            "calibration_error": calibration.as_ref().err().map(|e| e.to_string()),
        })
    }
}
