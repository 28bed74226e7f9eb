//! One file per subcommand; `common` holds the options they share.

pub mod bench;
pub mod calibrate;
pub mod common;
pub mod demo;
pub mod eps;
pub mod export;
pub mod generate;
pub mod inspect;
pub mod selftest;
pub mod targets;
pub mod translate;
