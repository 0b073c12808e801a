//! Files in and out: reading a dataset's sources (`source`), the store
//! that keeps validated tables on disk (`store`), where each dataset
//! folder's default store lives ([`cache`]), and writing results
//! as Parquet, CSV or JSON lines ([`output`]).

pub mod cache;
pub mod output;
pub(crate) mod source;
pub(crate) mod store;
