//! The store file being written ([`Sink`]): row groups whose columns are
//! encoded or copied from the source, and the statistics of a copied
//! chunk, computed from its values.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::{
    ArrowNumericType, DataType, Date32Type, Int32Type, Int64Type, SchemaRef,
};
use datafusion::config::TableParquetOptions;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowSchemaConverter;
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnDescriptor;

use super::{ChunkSource, Copied, Group, Kept};
use crate::error::{Error, Result};

/// The file being written, with what each of its columns may copy.
pub(super) struct Sink {
    writer: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Leaves of each field of `schema`.
    leaves: Vec<usize>,
    /// For each field: the source file column it may copy, with its
    /// statistics enabled.
    copies: Vec<Option<(usize, bool)>>,
    source_file: Wide,
    metadata: Arc<ParquetMetaData>,
    index: usize,
    done: Copied,
}

impl Sink {
    /// A new file at `path` for rows of `schema`, written with `options`
    /// but chunk statistics and no page index; each [`Kept`] column of
    /// the same Parquet type as its `source` column (and whose statistics,
    /// if kept, tuopin computes) may be copied.
    pub(super) fn create(
        path: &Path,
        schema: &SchemaRef,
        mut options: TableParquetOptions,
        source: &ChunkSource,
        kept: &[Kept],
    ) -> Result<Sink> {
        options.arrow_schema(schema);
        // Chunk statistics, no page index: a copied chunk has none of its
        // own that could be trusted.
        options.global.statistics_enabled = Some("chunk".into());
        let props: WriterProperties = WriterPropertiesBuilder::try_from(&options)?
            .set_offset_index_disabled(true)
            .build();
        let parquet = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(schema)?;
        let mut leaves = vec![0; schema.fields().len()];
        for i in 0..parquet.num_columns() {
            leaves[parquet.get_column_root_idx(i)] += 1;
        }
        let source_schema = source.metadata.file_metadata().schema_descr();
        let mut copies = vec![None; schema.fields().len()];
        for k in kept {
            let Ok(field) = schema.index_of(&k.column) else {
                continue;
            };
            if leaves[field] != 1 || k.file_column >= source_schema.num_columns() {
                continue;
            }
            let leaf = leaf_of(&leaves, field);
            let store = parquet.column(leaf);
            let stats = props.statistics_enabled(store.path()) != EnabledStatistics::None;
            if same_column(&store, &source_schema.column(k.file_column))
                && (!stats || summarised(schema.field(field).data_type()))
            {
                copies[field] = Some((k.file_column, stats));
            }
        }
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let writer = SerializedFileWriter::new(file, parquet.root_schema_ptr(), Arc::new(props))?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        let source_file = Wide::open(&source.path)?;
        Ok(Sink {
            writer,
            factory,
            schema: schema.clone(),
            leaves,
            copies,
            source_file,
            metadata: source.metadata.clone(),
            index: 0,
            done: Copied::default(),
        })
    }

    /// Write `group` as the next row group.
    pub(super) fn write(mut self, group: Group) -> Result<Sink> {
        let columns =
            |f: usize| -> Vec<&ArrayRef> { group.batches.iter().map(|b| b.column(f)).collect() };
        let copies = (0..self.schema.fields().len())
            .map(|f| self.copied(f, &group, &columns(f)))
            .collect::<Result<Vec<_>>>()?;
        let mut writers = self.factory.create_column_writers(self.index)?.into_iter();
        let mut row_group = self.writer.next_row_group()?;
        for ((f, field), copy) in self.schema.fields().iter().enumerate().zip(copies) {
            let mut encoders: Vec<_> = writers.by_ref().take(self.leaves[f]).collect();
            if let Some(close) = copy {
                row_group.append_column(&self.source_file, close)?;
                self.done.copied += 1;
                continue;
            }
            let arrays = columns(f);
            for array in &arrays {
                for (encoder, leaf) in encoders.iter_mut().zip(compute_leaves(field, array)?) {
                    encoder.write(&leaf)?;
                }
            }
            for encoder in encoders {
                encoder.close()?.append_to_row_group(&mut row_group)?;
                self.done.encoded += 1;
            }
        }
        row_group.close()?;
        self.index += 1;
        Ok(self)
    }

    /// The source chunk field `f` of `group` copies, as the row group
    /// writer takes it; `None` when it is encoded.
    fn copied(
        &self,
        f: usize,
        group: &Group,
        arrays: &[&ArrayRef],
    ) -> Result<Option<ColumnCloseResult>> {
        let (Some((file_column, stats)), Some((at, nulls))) = (self.copies[f], &group.source)
        else {
            return Ok(None);
        };
        let typed_nulls: usize = arrays.iter().map(|a| a.logical_null_count()).sum();
        let chunk = self.metadata.row_group(*at).column(file_column);
        if nulls.get(file_column) != Some(&typed_nulls)
            || usize::try_from(chunk.num_values()).ok() != Some(group.rows)
        {
            return Ok(None);
        }
        let statistics = match stats {
            true => match statistics(arrays, typed_nulls) {
                Some(s) => Some(s),
                None => return Ok(None),
            },
            false => None,
        };
        let leaf = leaf_of(&self.leaves, f);
        let descr = self.writer.schema_descr().column(leaf);
        let mut builder = ColumnChunkMetaData::builder(descr)
            .set_compression_codec(chunk.compression_codec())
            .set_encodings_mask(*chunk.encodings_mask())
            .set_total_compressed_size(chunk.compressed_size())
            .set_total_uncompressed_size(chunk.uncompressed_size())
            .set_num_values(chunk.num_values())
            .set_data_page_offset(chunk.data_page_offset())
            .set_dictionary_page_offset(chunk.dictionary_page_offset());
        if let Some(s) = statistics {
            builder = builder.set_statistics(s);
        }
        Ok(Some(ColumnCloseResult {
            bytes_written: u64::try_from(chunk.compressed_size()).unwrap_or(0),
            rows_written: group.rows as u64,
            metadata: builder.build()?,
            bloom_filter: None,
            column_index: None,
            offset_index: None,
        }))
    }

    /// Finish `other`, a sink of the same schema writing the file at
    /// `path`, and append its row groups, their chunks as they are.
    pub(super) fn absorb(&mut self, other: Sink, path: &Path) -> Result<()> {
        let done = other.done;
        let metadata = other.writer.close()?;
        self.done.copied += done.copied;
        self.done.encoded += done.encoded;
        let file = Wide::open(path)?;
        for group in metadata.row_groups() {
            let mut row_group = self.writer.next_row_group()?;
            for chunk in group.columns() {
                let close = ColumnCloseResult {
                    bytes_written: u64::try_from(chunk.compressed_size()).unwrap_or(0),
                    rows_written: u64::try_from(group.num_rows()).unwrap_or(0),
                    metadata: chunk.clone(),
                    bloom_filter: None,
                    column_index: None,
                    offset_index: None,
                };
                row_group.append_column(&file, close)?;
            }
            row_group.close()?;
            self.index += 1;
        }
        Ok(())
    }

    /// Finish the file.
    pub(super) fn close(self) -> Result<Copied> {
        self.writer.close()?;
        Ok(self.done)
    }
}

/// The first leaf of field `field`.
fn leaf_of(leaves: &[usize], field: usize) -> usize {
    leaves[..field].iter().sum()
}

/// Whether a chunk of `source` may stand for one of `store`: the same
/// Parquet type, logical type and levels (names may differ).
fn same_column(store: &ColumnDescriptor, source: &ColumnDescriptor) -> bool {
    let (a, b) = (store.self_type(), source.self_type());
    store.physical_type() == source.physical_type()
        && store.logical_type_ref() == source.logical_type_ref()
        && store.converted_type() == source.converted_type()
        && store.type_length() == source.type_length()
        && store.type_precision() == source.type_precision()
        && store.type_scale() == source.type_scale()
        && store.max_def_level() == source.max_def_level()
        && store.max_rep_level() == source.max_rep_level()
        && a.get_basic_info().repetition() == b.get_basic_info().repetition()
}

/// Whether [`statistics`] computes a column of `data_type`'s statistics.
fn summarised(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int32 | DataType::Int64 | DataType::Date32 | DataType::Boolean | DataType::Utf8
    )
}

/// Chunk statistics of a column's values `arrays` (min, max, nulls), as
/// parquet-rs writes them; `None` for a type not [`summarised`].
fn statistics(arrays: &[&ArrayRef], nulls: usize) -> Option<Statistics> {
    let nulls = Some(nulls as u64);
    let data_type = arrays.first()?.data_type();
    let stats = match data_type {
        DataType::Int32 => {
            let (min, max) = extremes::<Int32Type>(arrays);
            Statistics::new(min, max, None, nulls, false)
        }
        DataType::Date32 => {
            let (min, max) = extremes::<Date32Type>(arrays);
            Statistics::new(min, max, None, nulls, false)
        }
        DataType::Int64 => {
            let (min, max) = extremes::<Int64Type>(arrays);
            Statistics::new(min, max, None, nulls, false)
        }
        DataType::Boolean => {
            let (min, max) = fold(arrays, |a| {
                let a = a.as_boolean();
                (compute::min_boolean(a), compute::max_boolean(a))
            });
            Statistics::new(min, max, None, nulls, false)
        }
        DataType::Utf8 => {
            let (min, max) = fold(arrays, |a| {
                let a = a.as_string::<i32>();
                (
                    compute::min_string(a).map(str::to_string),
                    compute::max_string(a).map(str::to_string),
                )
            });
            let bytes = |s: Option<String>| s.map(|s| ByteArray::from(s.into_bytes()));
            Statistics::new(bytes(min), bytes(max), None, nulls, false)
        }
        _ => return None,
    };
    Some(stats)
}

/// The least and greatest of number columns `arrays` of Arrow type `T`.
fn extremes<T: ArrowNumericType>(arrays: &[&ArrayRef]) -> (Option<T::Native>, Option<T::Native>)
where
    T::Native: PartialOrd,
{
    fold(arrays, |a| {
        let a = a.as_primitive::<T>();
        (compute::min(a), compute::max(a))
    })
}

/// The least and greatest of each array's (least, greatest).
fn fold<T: PartialOrd>(
    arrays: &[&ArrayRef],
    each: impl Fn(&ArrayRef) -> (Option<T>, Option<T>),
) -> (Option<T>, Option<T>) {
    let mut least: Option<T> = None;
    let mut most: Option<T> = None;
    for a in arrays {
        let (lo, hi) = each(a);
        if let Some(lo) = lo {
            if least.as_ref().is_none_or(|l| lo < *l) {
                least = Some(lo);
            }
        }
        if let Some(hi) = hi {
            if most.as_ref().is_none_or(|m| hi > *m) {
                most = Some(hi);
            }
        }
    }
    (least, most)
}

/// A file whose chunks are copied in reads of [`Wide::READ`] bytes (the
/// `File` reader of parquet-rs reads 8 KiB at a time: a system call to
/// read and one to write every 8 KiB of a national store).
struct Wide(File);

impl Wide {
    const READ: usize = 1024 * 1024;

    fn open(path: &Path) -> Result<Wide> {
        File::open(path).map(Wide).map_err(|e| Error::io(path, e))
    }
}

impl parquet::file::reader::Length for Wide {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl parquet::file::reader::ChunkReader for Wide {
    type T = std::io::BufReader<File>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use std::io::{Seek, SeekFrom};
        let mut file = self.0.try_clone()?;
        file.seek(SeekFrom::Start(start))?;
        Ok(std::io::BufReader::with_capacity(Wide::READ, file))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}
