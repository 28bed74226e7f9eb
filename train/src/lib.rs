//! brenier-train: the companion that makes a bundle from real data on the CPU — data loaders,
//! a small ε-prediction UNet trained with burn, its ONNX export, and the OT height solve.

pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod model;
pub mod neural_map;
pub mod onnx;
pub mod params;
pub mod report;
pub mod train;
