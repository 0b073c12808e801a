//! A store file that copies its source's chunks holds the typed rows, row
//! for row, whichever chunks it copied.

use super::*;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::array::{BooleanArray, Float64Array, Int32Array, StringArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::fs::File;

/// The source's columns: an identifier, a count, an amount.
fn source_batch(ids: &[Option<&str>], counts: &[i32]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Utf8, true),
        Field::new("size", DataType::Int32, true),
        Field::new("income", DataType::Float64, true),
    ]));
    let income: Vec<f64> = counts.iter().map(|c| f64::from(*c) * 1.5).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(Int32Array::from(counts.to_vec())),
            Arc::new(Float64Array::from(income)),
        ],
    )
    .unwrap()
}

/// Eight source rows in two row groups of four.
fn source_rows() -> RecordBatch {
    let ids = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"].map(Some);
    source_batch(&ids, &[3, 1, 4, 1, 5, 9, 2, 6])
}

/// Write `rows` as a Parquet source of row groups of four rows, and read
/// it as the validation plan does: the tally counts each row group.
fn source(dir: &Path, rows: &RecordBatch) -> Arc<ChunkSource> {
    let path = dir.join("members.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut writer =
        ArrowWriter::try_new(File::create(&path).unwrap(), rows.schema(), Some(props)).unwrap();
    writer.write(rows).unwrap();
    writer.close().unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let metadata = builder.metadata().clone();
    let counts = metadata.row_groups().iter().map(|g| g.num_rows() as usize);
    let tally = Tally::new(counts.collect());
    for group in 0..metadata.num_row_groups() {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .with_row_groups(vec![group])
            .build()
            .unwrap();
        let mut counter = tally.counter(group);
        for batch in reader {
            counter.add(&batch.unwrap());
        }
    }
    Arc::new(ChunkSource {
        path,
        metadata,
        tally,
    })
}

/// The typed rows as the validation plan hands them to the writer:
/// `__row`, the source's columns, `__bad`.
fn typed(rows: &RecordBatch, numbers: &[i64]) -> RecordBatch {
    let mut fields = vec![Field::new(ROW_COLUMN, DataType::Int64, false)];
    fields.extend(rows.schema().fields().iter().map(|f| f.as_ref().clone()));
    fields.push(Field::new("__bad", DataType::Boolean, false));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(numbers.to_vec()))];
    columns.extend(rows.columns().iter().cloned());
    columns.push(Arc::new(BooleanArray::from(vec![false; rows.num_rows()])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn kept() -> Vec<Kept> {
    ["person_id", "size", "income"]
        .iter()
        .enumerate()
        .map(|(i, c)| Kept {
            column: c.to_string(),
            file_column: i,
        })
        .collect()
}

/// Write `batches` with `source`'s chunks; what was copied, and the
/// file's rows and metadata.
async fn written(
    dir: &Path,
    source: &Arc<ChunkSource>,
    batches: Vec<RecordBatch>,
) -> (Copied, RecordBatch, Arc<ParquetMetaData>) {
    written_in(dir, source, vec![batches]).await
}

/// [`written`] from partitions, each a list of batches.
async fn written_in(
    dir: &Path,
    source: &Arc<ChunkSource>,
    parts: Vec<Vec<RecordBatch>>,
) -> (Copied, RecordBatch, Arc<ParquetMetaData>) {
    let schema = parts[0][0].schema();
    let streams = parts
        .into_iter()
        .map(|batches| {
            let stream = futures::stream::iter(batches.into_iter().map(Ok));
            Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream))
                as SendableRecordBatchStream
        })
        .collect();
    let path = dir.join("stored.parquet");
    let copied = write_copying(streams, &path, source, &kept())
        .await
        .unwrap();
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "only the source and the store file: {left:?}"
    );
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let metadata = builder.metadata().clone();
    let read: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    (
        copied,
        compute::concat_batches(&schema, &read).unwrap(),
        metadata,
    )
}

#[tokio::test]
async fn unchanged_columns_are_copied_and_read_back_as_typed() {
    let dir = tempfile::tempdir().unwrap();
    let rows = source_rows();
    let source = source(dir.path(), &rows);
    let all = typed(&rows, &[1, 2, 3, 4, 5, 6, 7, 8]);
    // Batches that do not follow the row groups: 3 + 5 rows.
    let (copied, read, metadata) =
        written(dir.path(), &source, vec![all.slice(0, 3), all.slice(3, 5)]).await;
    assert_eq!(read, all);
    assert_eq!(metadata.num_row_groups(), 2);
    // Per row group: the identifier and the count copied; `__row`, the
    // amount (floating-point statistics are not computed) and `__bad`
    // encoded.
    assert_eq!(
        copied,
        Copied {
            copied: 4,
            encoded: 6
        }
    );
    // A copied chunk is the source's, compression and all…
    let source_chunk = source.metadata.row_group(1).column(0);
    let stored = metadata.row_group(1).column(1);
    assert_eq!(stored.compressed_size(), source_chunk.compressed_size());
    assert_eq!(stored.compression(), source_chunk.compression());
    // …with statistics of its own: the second row group's sizes 5, 9, 2, 6
    // and identifiers p5 … p8.
    let size = metadata.row_group(1).column(2).statistics().unwrap();
    assert_eq!(size.min_bytes_opt(), Some(&2i32.to_le_bytes()[..]));
    assert_eq!(size.max_bytes_opt(), Some(&9i32.to_le_bytes()[..]));
    assert_eq!(size.null_count_opt(), Some(0));
    let ids = stored.statistics().unwrap();
    assert_eq!(ids.min_bytes_opt(), Some(&b"p5"[..]));
    assert_eq!(ids.max_bytes_opt(), Some(&b"p8"[..]));
}

#[tokio::test]
async fn a_blank_made_null_is_encoded_in_its_row_group_only() {
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        Some("p1"),
        Some("p2"),
        Some("p3"),
        Some("p4"),
        Some("p5"),
        Some(" "),
        Some("p7"),
        None,
    ];
    let counts = [3, 1, 4, 1, 5, 9, 2, 6];
    let source = source(dir.path(), &source_batch(&ids, &counts));
    // Typed: the blank identifier became null (the source's own null
    // stays one).
    let mut blanked = ids;
    blanked[5] = None;
    let all = typed(&source_batch(&blanked, &counts), &[1, 2, 3, 4, 5, 6, 7, 8]);
    let (copied, read, metadata) = written(dir.path(), &source, vec![all.clone()]).await;
    assert_eq!(read, all);
    assert_eq!(read.column(1).null_count(), 2);
    assert_eq!(
        copied,
        Copied {
            copied: 3,
            encoded: 7
        }
    );
    let first = metadata.row_group(0).column(1).compression();
    let second = metadata.row_group(1).column(1).compression();
    assert_eq!(first, source.metadata.row_group(0).column(0).compression());
    assert_eq!(second, parquet::basic::Compression::LZ4_RAW);
}

#[tokio::test]
async fn a_row_group_missing_a_row_is_encoded_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rows = source_rows();
    let source = source(dir.path(), &rows);
    let all = typed(&rows, &[1, 2, 3, 4, 5, 6, 7, 8]);
    // Row 3 is not there: the first row group's chunks hold a row the
    // file must not.
    let kept_rows =
        compute::concat_batches(&all.schema(), &[all.slice(0, 2), all.slice(3, 5)]).unwrap();
    let (copied, read, metadata) = written(dir.path(), &source, vec![kept_rows.clone()]).await;
    assert_eq!(read, kept_rows);
    assert_eq!(metadata.row_group(0).num_rows(), 3);
    assert_eq!(
        copied,
        Copied {
            copied: 2,
            encoded: 8
        }
    );
}

#[tokio::test]
async fn a_column_of_another_type_is_never_copied() {
    let dir = tempfile::tempdir().unwrap();
    let rows = source_rows();
    let source = source(dir.path(), &rows);
    // The store declares `size` as 64-bit: the source's 32-bit chunk
    // cannot stand for it.
    let all = typed(&rows, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let mut fields: Vec<Field> = all
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[2] = Field::new("size", DataType::Int64, true);
    let mut columns = all.columns().to_vec();
    columns[2] = compute::cast(&columns[2], &DataType::Int64).unwrap();
    let wide = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let (copied, read, _) = written(dir.path(), &source, vec![wide.clone()]).await;
    assert_eq!(read, wide);
    assert_eq!(
        copied,
        Copied {
            copied: 2,
            encoded: 8
        }
    );
}

#[tokio::test]
async fn partitions_are_written_at_once_into_one_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rows = source_rows();
    let source = source(dir.path(), &rows);
    let all = typed(&rows, &[1, 2, 3, 4, 5, 6, 7, 8]);
    // A row group each: every chunk copied as with one partition.
    let parts = vec![
        vec![all.slice(0, 4)],
        vec![all.slice(4, 2), all.slice(6, 2)],
    ];
    let (copied, read, metadata) = written_in(dir.path(), &source, parts).await;
    assert_eq!(read, all);
    assert_eq!(metadata.num_row_groups(), 2);
    assert_eq!(
        copied,
        Copied {
            copied: 4,
            encoded: 6
        }
    );
    // Partitions that split a row group: its two halves are row groups of
    // their own, encoded.
    let parts = vec![vec![all.slice(0, 6)], vec![all.slice(6, 2)]];
    let (copied, read, metadata) = written_in(dir.path(), &source, parts).await;
    assert_eq!(read, all);
    let sizes: Vec<i64> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, vec![4, 2, 2]);
    assert_eq!(
        copied,
        Copied {
            copied: 2,
            encoded: 13
        }
    );
}

#[test]
fn row_groups_are_found_by_row_number() {
    let bounds = Bounds {
        groups: vec![(1, 4), (5, 4), (9, 2)],
    };
    let groups: Vec<usize> = [1, 4, 5, 8, 9, 10, 11, 99]
        .iter()
        .map(|r| bounds.group_of(*r))
        .collect();
    assert_eq!(groups, vec![0, 0, 1, 1, 2, 2, 3, 3]);
    assert_eq!(bounds.end(1), 9);
    assert_eq!(bounds.end(3), i64::MAX);
}

#[test]
fn a_row_group_is_tallied_once_every_row_is_counted() {
    let rows = source_rows();
    let tally = Tally::new(vec![4, 4]);
    let mut counter = tally.counter(1);
    counter.add(&rows.slice(0, 3));
    assert!(tally.nulls(1).is_none(), "three rows of four");
    counter.add(&rows.slice(3, 1));
    assert_eq!(tally.nulls(1).as_deref(), Some(&[0, 0, 0][..]));
    assert!(tally.nulls(0).is_none());
    let ids = [None, Some("a"), None, Some("b")];
    let mut counter = tally.counter(0);
    counter.add(&source_batch(&ids, &[1, 2, 3, 4]));
    assert_eq!(tally.nulls(0).as_deref(), Some(&[2, 0, 0][..]));
}
