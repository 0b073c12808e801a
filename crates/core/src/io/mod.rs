//! Files in and out: reading a dataset's sources (`source`), the store
//! that keeps validated tables on disk (`store`) and the store files that
//! copy their source's column chunks (`chunks`), where each dataset
//! folder's default store lives ([`cache`]), how registry exports are
//! read — encodings and Chinese headers and labels ([`exports`]), Excel
//! ([`xlsx`]) — how a dataset is written as such exports ([`exporting`]),
//! and writing results as Parquet, CSV, JSON lines or Excel ([`output`]).

pub mod cache;
pub(crate) mod chunks;
pub mod exporting;
pub mod exports;
pub mod output;
pub(crate) mod parts;
pub(crate) mod source;
pub(crate) mod store;
pub mod xlsx;
