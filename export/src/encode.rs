//! Encoding a domain's images to time T with its own network (DDIM, η = 0), the export's
//! longest stage (N·K network evaluations), made resumable: the latents go into a work folder
//! in chunks, each written atomically with its CRC-32 recorded, under a key of everything that
//! decides them (the network's bytes, T, K, the images' values, the backend's precision). A killed
//! export, run again, verifies the chunks it finds and encodes only the rest; a damaged chunk is
//! encoded again. Each image runs alone through the network whatever the chunk (see the CPU
//! backend), so a resumed encoding equals an uninterrupted one bit for bit.

use std::path::{Path, PathBuf};

use brenier::pipeline::{NetTime, Observer};
use brenier::precision::Precision;
use brenier::{Engine, NetKey};

use crate::error::{ExportError, Result};

/// Images per chunk: each is one file and one unit of progress.
pub const CHUNK: usize = 64;

/// FNV-1a, 64 bits: the cache key of an encoding's inputs.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate the parts, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What one encoding is: enough to tell a reusable cache from a stale one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Meta {
    key: String,
    net: String,
    t: usize,
    steps: usize,
    images: usize,
    precision: Precision,
    /// CRC-32 of each chunk file written so far, in order.
    chunks: Vec<u32>,
}

/// Encodes `images` (N×D, model space) with the network of domain `key` to `t` in `steps` DDIM
/// steps, reusing and extending the cache under `work` (`encode-<domain>-<key>/`). `obs` sees one
/// step per chunk.
pub fn encode_cached(
    engine: &Engine,
    key: NetKey,
    images: &[f32],
    t: usize,
    steps: usize,
    work: &Path,
    obs: &dyn Observer,
) -> Result<Vec<f32>> {
    let d = engine.dim();
    let n = images.len() / d;
    let net = engine.bundle().net_bytes(key)?;
    let precision = engine.backend().precision();
    let hash = fnv1a(&[
        net,
        &(t as u64).to_le_bytes(),
        &(steps as u64).to_le_bytes(),
        bytemuck::cast_slice(images),
        precision.as_str().as_bytes(),
    ]);
    let dir = work.join(format!("encode-{}-{hash:016x}", key.as_str()));
    std::fs::create_dir_all(&dir).map_err(|e| brenier::Error::Write { path: dir.clone(), source: e })?;
    let meta_path = dir.join("meta.json");
    let fresh = Meta {
        key: format!("{hash:016x}"),
        net: format!("{:016x}", fnv1a(&[net])),
        t,
        steps,
        images: n,
        precision,
        chunks: vec![],
    };
    let mut meta = match std::fs::read(&meta_path).ok().and_then(|b| serde_json::from_slice::<Meta>(&b).ok()) {
        Some(m) if Meta { chunks: vec![], ..m.clone() } == fresh => m,
        _ => fresh,
    };
    let chunks = n.div_ceil(CHUNK);
    let mut out = Vec::with_capacity(images.len());
    let chunk_path = |c: usize| dir.join(format!("chunk-{c:05}.npy"));
    // Chunks already encoded: kept while their files match their recorded CRC.
    let mut done = 0;
    while done < meta.chunks.len().min(chunks) {
        let Ok(bytes) = std::fs::read(chunk_path(done)) else { break };
        if crc32fast::hash(&bytes) != meta.chunks[done] {
            log::warn!("{}: damaged, encoding it again", chunk_path(done).display());
            break;
        }
        let a = brenier::io::npy::parse(&bytes)
            .map_err(|e| ExportError::invalid(format!("{}: {e}", chunk_path(done).display())))?;
        let rows = CHUNK.min(n - done * CHUNK);
        if a.data.len() != rows * d {
            break;
        }
        out.extend(a.data);
        done += 1;
    }
    meta.chunks.truncate(done);
    obs.stage(&format!("encode {} to t = {t} ({n} images, cached {done}/{chunks} chunks)", key.as_str()), chunks);
    for _ in 0..done {
        obs.step();
    }
    for c in done..chunks {
        let mut x = images[c * CHUNK * d..((c + 1) * CHUNK).min(n) * d].to_vec();
        let rows = x.len() / d;
        engine.encode(key, &mut x, t, steps, &brenier::pipeline::Silent, &mut NetTime::default())?;
        let bytes = brenier::io::npy::encode(&[rows, d], &x);
        brenier::io::write_atomic(&chunk_path(c), &bytes)?;
        meta.chunks.push(crc32fast::hash(&bytes));
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| {
            ExportError::invalid(format!("{}: cannot record the encoded chunks: {e}", meta_path.display()))
        })?;
        brenier::io::write_atomic(&meta_path, &json)?;
        out.extend(x);
        obs.step();
    }
    obs.done();
    Ok(out)
}

/// The work folder's default place beside the output bundle: `model.work/` for `model.brn`.
pub fn default_work_dir(output: &Path) -> PathBuf {
    output.with_extension("work")
}
