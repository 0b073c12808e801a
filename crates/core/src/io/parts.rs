//! A table read from a folder of parts (DESIGN §8): `<table>/` holding
//! several exports of one table — one per county or month, in any of the
//! source formats — concatenated in file-name order. Each part's headers
//! are mapped to English first, so parts may name and order their columns
//! differently; a part with a column missing or extra is an error naming
//! it. Parts are decoded in parallel, one per core. The rejects ledger
//! names the part (`file`) and the row within it ([`Part`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};

use crate::error::{Error, Result};
use crate::io::exports::{ColumnMap, Reading};
use crate::io::source::{
    english_names, raw_from_batches, read_batches, Part, RawTable, EXTENSIONS,
};
use crate::schema::TableSpec;

/// The part files of the table folder `dir`, by name (files of the known
/// extensions; hidden files are skipped); an error naming the folder when
/// there is none.
pub(crate) fn part_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut parts = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let visible = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.') && !n.starts_with("~$"));
        let known = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if visible && known && path.is_file() {
            parts.push(path);
        }
    }
    parts.sort();
    if parts.is_empty() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "table folder without parts (.csv, .xlsx, .parquet or .arrow files)",
            ),
        ));
    }
    Ok(parts)
}

/// The parts of the table folder `dir`, concatenated in file-name order:
/// each part's headers mapped to English, its columns put in the first
/// part's order (a part with other columns is an error naming it), and
/// where each part starts recorded for the rejects ledger.
pub(crate) fn read_parts(
    spec: &'static TableSpec,
    dir: &Path,
    reading: &Reading,
) -> Result<RawTable> {
    let folder = dir.display().to_string();
    let mut all: Vec<RecordBatch> = Vec::new();
    let mut parts = Vec::new();
    let mut columns: Option<(Vec<String>, String)> = None;
    let mut first = 1i64;
    let mut mapped_any = 0;
    let files = part_files(dir)?;
    let read = read_all(spec, &files, reading);
    for (path, batches) in files.into_iter().zip(read) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = format!("{}/{name}", spec.name);
        let batches = batches?;
        let base = match batches.first() {
            Some(b) => b.schema(),
            None => continue,
        };
        let (english, mapped) = english_names(spec.name, &base, &reading.map);
        mapped_any += mapped;
        let order: Vec<usize> = match &columns {
            None => {
                columns = Some((english.clone(), file.clone()));
                (0..english.len()).collect()
            }
            Some((want, first_file)) => {
                let mut order = Vec::with_capacity(want.len());
                for w in want {
                    match english.iter().position(|e| e == w) {
                        Some(i) => order.push(i),
                        None => {
                            return Err(part_error(
                                spec,
                                &path,
                                format!("has no column `{w}` (the first part, {first_file}, has)"),
                            ))
                        }
                    }
                }
                if let Some(extra) = english.iter().find(|e| !want.contains(e)) {
                    return Err(part_error(
                        spec,
                        &path,
                        format!(
                            "has a column `{extra}` that the first part, {first_file}, has not"
                        ),
                    ));
                }
                order
            }
        };
        let want = columns.as_ref().map(|(w, _)| w.clone()).unwrap_or_default();
        let mut rows = 0i64;
        for batch in batches {
            let projected = batch.project(&order)?;
            let fields: Vec<Field> = projected
                .schema()
                .fields()
                .iter()
                .zip(&want)
                .map(|(f, n)| f.as_ref().clone().with_name(n))
                .collect();
            if let Some(prev) = all.first() {
                if let Some((f, g)) = prev
                    .schema()
                    .fields()
                    .iter()
                    .zip(&fields)
                    .find(|(f, g)| f.data_type() != g.data_type())
                {
                    return Err(part_error(
                        spec,
                        &path,
                        format!(
                            "column `{}` is {} here but {} in the first part",
                            g.name(),
                            g.data_type(),
                            f.data_type()
                        ),
                    ));
                }
            }
            rows += projected.num_rows() as i64;
            all.push(RecordBatch::try_new(
                Arc::new(Schema::new(fields)),
                projected.columns().to_vec(),
            )?);
        }
        parts.push(Part { file, first });
        first += rows;
    }
    let mut raw = raw_from_batches(spec, &folder, all, Arc::new(ColumnMap::default()))?;
    raw.map = reading.map.clone();
    if mapped_any > 0 {
        raw.notes.insert(
            0,
            format!("{mapped_any} exported (Chinese) headers read as their English columns"),
        );
    }
    raw.notes.push(format!(
        "read from {} parts; rejects name the part (`file`) and the row within it",
        parts.len()
    ));
    raw.parts = parts;
    Ok(raw)
}

/// The rows of each of `files`, read on as many threads as there are
/// cores (a part is decoded on one thread), in the order of `files`.
fn read_all(
    spec: &'static TableSpec,
    files: &[PathBuf],
    reading: &Reading,
) -> Vec<Result<Vec<RecordBatch>>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<Vec<RecordBatch>>>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let result = read_batches(spec, path, reading);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(result);
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(files)
        .map(|(slot, path)| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(Error::InvalidArgument(format!(
                    "{}: the part was not read",
                    path.display()
                )))
            })
        })
        .collect()
}

fn part_error(spec: &TableSpec, path: &Path, message: String) -> Error {
    Error::Schema {
        table: spec.name.to_string(),
        source_name: path.display().to_string(),
        column: None,
        message: format!("part {message}"),
    }
}
