//! What writing each column of a store file costs, under each layout.
//!
//! Reads one row group of a Parquet file (a store file, e.g. the national
//! members), then writes each column alone with parquet-rs under several
//! layouts — plain or dictionary, LZ4 or none, statistics or none, the
//! delta encodings — and prints, per column and layout, the best of three
//! times and the bytes written. The figures behind the store's layout
//! choices (BENCHMARKS.md, twenty-second session):
//!
//! ```sh
//! cargo bench --bench columns -- /tmp/s30/members.parquet 3 id_number,person_id
//! ```
//!
//! Arguments: the file, the row group (default 0), and a comma-separated
//! list of columns (default all).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// A layout to try: its name, codec, dictionary, encoding, statistics.
type Trial = (
    &'static str,
    Compression,
    bool,
    Option<Encoding>,
    EnabledStatistics,
);

const TRIALS: &[Trial] = &[
    (
        "plain+lz4+stats",
        Compression::LZ4_RAW,
        false,
        None,
        EnabledStatistics::Page,
    ),
    (
        "plain+lz4",
        Compression::LZ4_RAW,
        false,
        None,
        EnabledStatistics::None,
    ),
    (
        "plain",
        Compression::UNCOMPRESSED,
        false,
        None,
        EnabledStatistics::None,
    ),
    (
        "dict+lz4+stats",
        Compression::LZ4_RAW,
        true,
        None,
        EnabledStatistics::Page,
    ),
    (
        "dict+lz4",
        Compression::LZ4_RAW,
        true,
        None,
        EnabledStatistics::None,
    ),
    (
        "dict",
        Compression::UNCOMPRESSED,
        true,
        None,
        EnabledStatistics::None,
    ),
    (
        "delta_byte_array",
        Compression::UNCOMPRESSED,
        false,
        Some(Encoding::DELTA_BYTE_ARRAY),
        EnabledStatistics::None,
    ),
    (
        "delta_length",
        Compression::UNCOMPRESSED,
        false,
        Some(Encoding::DELTA_LENGTH_BYTE_ARRAY),
        EnabledStatistics::None,
    ),
    (
        "delta_int+lz4",
        Compression::LZ4_RAW,
        false,
        Some(Encoding::DELTA_BINARY_PACKED),
        EnabledStatistics::None,
    ),
    (
        "delta_int",
        Compression::UNCOMPRESSED,
        false,
        Some(Encoding::DELTA_BINARY_PACKED),
        EnabledStatistics::None,
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: cargo bench --bench columns -- FILE.parquet [ROW_GROUP] [COLUMN,…]");
        return Ok(());
    };
    let group: usize = args.get(1).map_or(Ok(0), |g| g.parse())?;
    let only: Option<Vec<&str>> = args.get(2).map(|c| c.split(',').collect());
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path)?)?
        .with_row_groups(vec![group])
        .build()?;
    let batches = reader.collect::<Result<Vec<RecordBatch>, _>>()?;
    let Some(first) = batches.first() else {
        eprintln!("{path}: row group {group} is empty");
        return Ok(());
    };
    let schema = first.schema();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!("{path}, row group {group}: {rows} rows; best of 3, ms / MB");
    for (i, field) in schema.fields().iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !o.contains(&field.name().as_str()))
        {
            continue;
        }
        let one = Arc::new(Schema::new(vec![field.as_ref().clone()]));
        let column = batches
            .iter()
            .map(|b| RecordBatch::try_new(one.clone(), vec![b.column(i).clone()]))
            .collect::<Result<Vec<_>, _>>()?;
        let mut line = format!("{:22}", field.name());
        for &(name, codec, dictionary, encoding, statistics) in TRIALS {
            if !applies(field.data_type(), dictionary, encoding) {
                continue;
            }
            let mut props = WriterProperties::builder()
                .set_compression(codec)
                .set_dictionary_enabled(dictionary)
                .set_statistics_enabled(statistics)
                .set_max_row_group_row_count(Some(rows.max(1)));
            if let Some(e) = encoding {
                props = props.set_encoding(e);
            }
            let props = props.build();
            let (mut best, mut bytes) = (f64::MAX, 0);
            for _ in 0..3 {
                let mut out = Vec::with_capacity(64 << 20);
                let start = Instant::now();
                let mut writer = ArrowWriter::try_new(&mut out, one.clone(), Some(props.clone()))?;
                for b in &column {
                    writer.write(b)?;
                }
                writer.close()?;
                best = best.min(start.elapsed().as_secs_f64());
                bytes = out.len();
            }
            line += &format!("  {name} {:.0}/{:.1}", best * 1e3, bytes as f64 / 1e6);
        }
        println!("{line}");
    }
    Ok(())
}

/// Whether a layout applies to a column of `data_type` (parquet-rs panics
/// on a delta encoding of the wrong physical type).
fn applies(data_type: &DataType, dictionary: bool, encoding: Option<Encoding>) -> bool {
    let text = matches!(data_type, DataType::Utf8 | DataType::LargeUtf8);
    let integer = matches!(data_type, DataType::Int32 | DataType::Int64);
    match encoding {
        Some(Encoding::DELTA_BYTE_ARRAY | Encoding::DELTA_LENGTH_BYTE_ARRAY) => text && !dictionary,
        Some(Encoding::DELTA_BINARY_PACKED) => integer && !dictionary,
        _ => true,
    }
}
