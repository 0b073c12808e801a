//! Files in and out: reading a dataset's sources (`source`), the store
//! that keeps validated tables on disk (`store`), and writing results
//! as Parquet, CSV or JSON lines ([`output`]).

pub mod output;
pub(crate) mod source;
pub(crate) mod store;
