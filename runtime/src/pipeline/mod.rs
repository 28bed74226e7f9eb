//! Pipelines built on the engine: translation (DDIB, OT-ALD) and generation (DPM-OT, prior-OT).

pub mod engine;
pub mod generate;
pub mod mapping;
pub mod memory;
pub mod plan;
pub mod translate;

pub use engine::{Engine, NetSlot, NetTime, Observer, Silent};
pub use generate::{GenerateMethod, GenerateOptions, Generation};
pub use mapping::MapStats;
pub use memory::MemoryEstimate;
pub use plan::{PlanMap, TranslationPlan};
pub use translate::{TranslateMethod, TranslateOptions, Translation};
