//! Reports: renderings of `results/controls.json` and `run.json`. Reports never
//! recompute a result.

pub mod csv;
pub mod json;
