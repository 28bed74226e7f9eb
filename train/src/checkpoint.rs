//! Checkpoint directories written so that an interrupted save leaves the previous checkpoint
//! whole: everything goes into `ckpt.tmp`, which then replaces `ckpt`. Parameters travel as one
//! flat npy vector per module plus the tensor sizes that split it again.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// Where a run keeps its checkpoint.
pub fn dir(out: &Path) -> PathBuf {
    out.join("ckpt")
}

/// Writes `out/ckpt` through `fill`, which writes the checkpoint's files into the folder it is
/// given.
pub fn write(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = out.join("ckpt.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    fill(&tmp)?;
    let done = dir(out);
    let old = out.join("ckpt.old");
    let _ = std::fs::remove_dir_all(&old);
    if done.exists() {
        std::fs::rename(&done, &old)?;
    }
    std::fs::rename(&tmp, &done)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Every tensor of a module's parameters, concatenated.
pub fn flat(v: &[Vec<f32>]) -> Vec<f32> {
    v.iter().flatten().copied().collect()
}

/// [`flat`] undone with the tensor sizes.
pub fn unflat(v: &[f32], sizes: &[usize]) -> Vec<Vec<f32>> {
    let mut at = 0;
    sizes
        .iter()
        .map(|&n| {
            at += n;
            v.get(at - n..at).map(<[f32]>::to_vec).unwrap_or_default()
        })
        .collect()
}

/// Writes one module's parameters as `name.npy`.
pub fn write_params(dir: &Path, name: &str, params: &[Vec<f32>]) -> Result<()> {
    let values = flat(params);
    brenier::io::npy::write(&dir.join(format!("{name}.npy")), &[values.len()], &values)?;
    Ok(())
}

/// Reads `name.npy` back into tensors of `sizes`; a length mismatch is an error naming the file.
pub fn read_params(dir: &Path, name: &str, sizes: &[usize]) -> Result<Vec<Vec<f32>>> {
    let path = dir.join(format!("{name}.npy"));
    let a = brenier::io::npy::read(&path)?;
    anyhow::ensure!(
        a.data.len() == sizes.iter().sum::<usize>(),
        "{} holds {} values, the network has {}: the checkpoint is from another configuration",
        path.display(),
        a.data.len(),
        sizes.iter().sum::<usize>()
    );
    Ok(unflat(&a.data, sizes))
}
