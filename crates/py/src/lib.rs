//! `tuopin._tuopin`: the thin pyo3 layer under the Python package `tuopin`.
//!
//! One tokio runtime per process; every query runs with the GIL released
//! and polls for Ctrl-C every 100 ms; results cross to pyarrow through the
//! Arrow C stream interface (no copy of column buffers); inputs are any
//! object with `__arrow_c_stream__`. Errors map onto the exception
//! hierarchy `TuopinError` > `DataError`, `RuleError`, `QueryError`, and a
//! Rust panic surfaces as `TuopinError`, never as a bare `PanicException`.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::DataFrame;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyTable;
use tuopin::synth::GenerateOptions;
use tuopin::{
    ColumnMap, Dataset, Encoding, Engine, EngineOptions, ErrorKind, Level, LevelSelection,
    OpenOptions, RuleSet, SqlOptions,
};

create_exception!(
    _tuopin,
    TuopinError,
    PyException,
    "Base class of tuopin errors."
);
create_exception!(
    _tuopin,
    DataError,
    TuopinError,
    "Bad or unreadable input data."
);
create_exception!(_tuopin, RuleError, TuopinError, "A bad rule set.");
create_exception!(
    _tuopin,
    QueryError,
    TuopinError,
    "A failed query or a bad argument."
);

fn to_py(e: tuopin::Error) -> PyErr {
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::Data => DataError::new_err(msg),
        ErrorKind::Rule => RuleError::new_err(msg),
        ErrorKind::Query => QueryError::new_err(msg),
    }
}

struct Runtime {
    rt: tokio::runtime::Runtime,
    pid: u32,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    let r = RUNTIME.get_or_init(|| Runtime {
        rt: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("tuopin")
            .build()
            .unwrap_or_else(|e| panic!("cannot start the tokio runtime: {e}")),
        pid: std::process::id(),
    });
    if r.pid != std::process::id() {
        return Err(TuopinError::new_err(
            "tuopin was used after fork(): its runtime threads do not exist in the child; \
             use the 'spawn' or 'forkserver' multiprocessing start method",
        ));
    }
    Ok(&r.rt)
}

/// Run `fut` to completion with the GIL released, checking for Ctrl-C
/// (KeyboardInterrupt) every 100 ms and turning panics into TuopinError.
fn wait<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = tuopin::Result<T>> + Send,
    T: Send,
{
    let rt = runtime()?;
    let outcome = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                tokio::pin!(fut);
                loop {
                    tokio::select! {
                        res = &mut fut => return Ok(res),
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {
                            Python::attach(|py| py.check_signals())?;
                        }
                    }
                }
            })
        }))
    });
    match outcome {
        Ok(Ok(res)) => res.map_err(to_py),
        Ok(Err(interrupt)) => Err(interrupt),
        Err(panic) => Err(TuopinError::new_err(format!(
            "internal error (a bug in tuopin, please report it): {}",
            panic_message(&panic)
        ))),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

async fn collect(
    df: DataFrame,
) -> tuopin::Result<(Vec<RecordBatch>, datafusion::arrow::datatypes::SchemaRef)> {
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok((batches, schema))
}

fn to_pyarrow(
    py: Python<'_>,
    (batches, schema): (Vec<RecordBatch>, datafusion::arrow::datatypes::SchemaRef),
) -> PyResult<Py<PyAny>> {
    let table = PyTable::try_new(batches, schema)?;
    Ok(table.into_pyarrow(py)?.unbind())
}

fn options(memory_limit: Option<usize>, partitions: Option<usize>) -> EngineOptions {
    EngineOptions::with_limits(memory_limit, partitions)
}

fn parse_level(level: &str) -> PyResult<Option<Level>> {
    level
        .parse::<LevelSelection>()
        .map(LevelSelection::level)
        .map_err(to_py)
}

/// A rule set (see DESIGN §3).
#[pyclass(name = "RuleSet", module = "tuopin._tuopin", frozen, from_py_object)]
#[derive(Clone)]
struct PyRuleSet {
    inner: RuleSet,
}

#[pymethods]
impl PyRuleSet {
    #[staticmethod]
    fn builtin(name: &str) -> PyResult<Self> {
        RuleSet::builtin(name)
            .map(|inner| PyRuleSet { inner })
            .map_err(to_py)
    }

    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        RuleSet::from_toml(text)
            .map(|inner| PyRuleSet { inner })
            .map_err(to_py)
    }

    #[staticmethod]
    fn list() -> Vec<&'static str> {
        RuleSet::builtin_names()
    }

    fn with_pass_score(&self, name: &str, pass_score: f64) -> PyResult<Self> {
        self.inner
            .with_pass_score(name, pass_score)
            .map(|inner| PyRuleSet { inner })
            .map_err(to_py)
    }

    fn to_toml(&self) -> PyResult<String> {
        self.inner.to_toml().map_err(to_py)
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    #[getter]
    fn unit(&self) -> &'static str {
        self.inner.unit.as_str()
    }

    #[getter]
    fn description(&self) -> String {
        self.inner.description.clone()
    }

    #[getter]
    fn pass_score(&self) -> Option<f64> {
        self.inner.pass_score
    }

    #[getter]
    fn indicators<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .indicators
            .iter()
            .map(|i| {
                let d = PyDict::new(py);
                d.set_item("key", &i.key)?;
                d.set_item("label", &i.label)?;
                d.set_item("points", i.points)?;
                d.set_item("veto", i.veto)?;
                d.set_item("when", &i.when)?;
                Ok(d)
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "RuleSet(name={:?}, unit={:?}, indicators={}, pass_score={:?})",
            self.inner.name,
            self.inner.unit.as_str(),
            self.inner.indicators.len(),
            self.inner.pass_score
        )
    }
}

/// The analytics engine over one validated dataset.
#[pyclass(name = "Engine", module = "tuopin._tuopin", frozen)]
struct PyEngine {
    inner: Engine,
}

#[pymethods]
impl PyEngine {
    fn evaluate(&self, py: Python<'_>, rules: Vec<PyRuleSet>, year: i32) -> PyResult<Py<PyAny>> {
        let engine = self.inner.clone();
        let rules: Vec<RuleSet> = rules.into_iter().map(|r| r.inner).collect();
        let out = wait(py, async move {
            let df = if let [one] = rules.as_slice() {
                engine.evaluate(one, year).await?
            } else {
                engine.evaluate_many(&rules, year).await?
            };
            collect(df).await
        })?;
        to_pyarrow(py, out)
    }

    fn audit(&self, py: Python<'_>, rules: PyRuleSet, year: i32) -> PyResult<Py<PyAny>> {
        let engine = self.inner.clone();
        let out = wait(py, async move {
            collect(engine.audit(&rules.inner, year).await?).await
        })?;
        to_pyarrow(py, out)
    }

    fn metrics(&self, py: Python<'_>, year: i32, level: &str) -> PyResult<Py<PyAny>> {
        let level = parse_level(level)?;
        let engine = self.inner.clone();
        let out = wait(py, async move {
            collect(engine.metrics(year, level).await?).await
        })?;
        to_pyarrow(py, out)
    }

    fn causes(&self, py: Python<'_>, year: i32, level: &str) -> PyResult<Py<PyAny>> {
        let level = parse_level(level)?;
        let engine = self.inner.clone();
        let out = wait(py, async move {
            collect(engine.causes(year, level).await?).await
        })?;
        to_pyarrow(py, out)
    }

    fn transitions(&self, py: Python<'_>, year: i32, level: &str) -> PyResult<Py<PyAny>> {
        let level = parse_level(level)?;
        let engine = self.inner.clone();
        let out = wait(py, async move {
            collect(engine.transitions(year, level).await?).await
        })?;
        to_pyarrow(py, out)
    }

    #[pyo3(signature = (query, allow_write=false))]
    fn sql(&self, py: Python<'_>, query: String, allow_write: bool) -> PyResult<Py<PyAny>> {
        let engine = self.inner.clone();
        let options = SqlOptions { allow_write };
        let out = wait(py, async move {
            collect(engine.sql_with(&query, options).await?).await
        })?;
        to_pyarrow(py, out)
    }

    fn rejects(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let engine = self.inner.clone();
        let out = wait(py, async move { collect(engine.rejects().await?).await })?;
        to_pyarrow(py, out)
    }

    /// Load summary: list of (table, source, rows, accepted, rejected).
    fn mpi(
        &self,
        py: Python<'_>,
        rules: PyRuleSet,
        year: i32,
        level: &str,
        k: Vec<f64>,
    ) -> PyResult<Py<PyAny>> {
        let level = parse_level(level)?;
        let engine = self.inner.clone();
        let out = wait(py, async move {
            collect(engine.mpi(&rules.inner, year, level, &k).await?).await
        })?;
        to_pyarrow(py, out)
    }

    fn quality(&self, py: Python<'_>, year: i32) -> PyResult<Py<PyAny>> {
        let engine = self.inner.clone();
        let out = wait(
            py,
            async move { collect(engine.quality(year).await?).await },
        )?;
        to_pyarrow(py, out)
    }

    fn mpi_change(
        &self,
        py: Python<'_>,
        rules: PyRuleSet,
        from_year: i32,
        to_year: i32,
        level: &str,
        k: f64,
    ) -> PyResult<Py<PyAny>> {
        let level = parse_level(level)?;
        let engine = self.inner.clone();
        let out = wait(py, async move {
            collect(
                engine
                    .mpi_change(&rules.inner, from_year, to_year, level, k)
                    .await?,
            )
            .await
        })?;
        to_pyarrow(py, out)
    }

    fn notes(&self, py: Python<'_>, year: i32) -> PyResult<Vec<String>> {
        let engine = self.inner.clone();
        wait(py, async move { engine.notes(year).await })
    }

    fn years(&self, py: Python<'_>) -> PyResult<Vec<i32>> {
        let engine = self.inner.clone();
        wait(py, async move { engine.years().await })
    }

    #[allow(clippy::type_complexity)]
    fn summary(&self) -> Vec<(String, String, usize, usize, usize, Vec<String>)> {
        self.inner
            .dataset()
            .summary()
            .iter()
            .map(|s| {
                (
                    s.table.clone(),
                    s.source.clone(),
                    s.rows,
                    s.accepted,
                    s.rejected,
                    s.notes.clone(),
                )
            })
            .collect()
    }
}

#[pyfunction]
#[pyo3(signature = (path, memory_limit=None, partitions=None, store=None, cache=true, encoding=None, columns=None))]
#[allow(clippy::too_many_arguments)]
fn open(
    py: Python<'_>,
    path: String,
    memory_limit: Option<usize>,
    partitions: Option<usize>,
    store: Option<String>,
    cache: bool,
    encoding: Option<String>,
    columns: Option<String>,
) -> PyResult<PyEngine> {
    let opts = options(memory_limit, partitions);
    let encoding = match encoding {
        Some(e) => e.parse::<Encoding>().map_err(to_py)?,
        None => Encoding::Auto,
    };
    let columns = match columns {
        Some(file) => Some(ColumnMap::from_file(std::path::Path::new(&file)).map_err(to_py)?),
        None => None,
    };
    let open_options = OpenOptions {
        store: store.map(Into::into),
        cache,
        memory_limit,
        encoding,
        columns,
        ..Default::default()
    };
    let inner = wait(py, async move {
        Engine::with_options(Dataset::open_with(&path, &open_options).await?, opts).await
    })?;
    Ok(PyEngine { inner })
}

/// Build an engine from `{table: arrow stream object}`.
#[pyfunction]
#[pyo3(signature = (tables, memory_limit=None, partitions=None))]
fn from_tables(
    py: Python<'_>,
    tables: HashMap<String, PyTable>,
    memory_limit: Option<usize>,
    partitions: Option<usize>,
) -> PyResult<PyEngine> {
    let opts = options(memory_limit, partitions);
    let tables: Vec<(String, Vec<RecordBatch>)> = tables
        .into_iter()
        .map(|(name, t)| (name, t.into_inner().0))
        .collect();
    let inner = wait(py, async move {
        Engine::with_options(Dataset::from_batches(tables).await?, opts).await
    })?;
    Ok(PyEngine { inner })
}

/// Generate a synthetic registry: written as Parquet under `path`, or
/// returned as `{table: pyarrow.Table}` when `path` is None.
#[pyfunction]
#[pyo3(signature = (households=10_000, seed=2016, path=None, faults=0.0, year=None))]
fn generate(
    py: Python<'_>,
    households: usize,
    seed: u64,
    path: Option<String>,
    faults: f64,
    year: Option<i32>,
) -> PyResult<Option<Py<PyDict>>> {
    let opts = GenerateOptions {
        households,
        seed,
        faults,
        only_year: year,
        progress: None,
    };
    match path {
        Some(p) => {
            wait(py, async move { tuopin::synth::generate(&opts, p) })?;
            Ok(None)
        }
        None => {
            let tables = wait(py, async move { tuopin::synth::generate_tables(&opts) })?;
            let d = PyDict::new(py);
            for (name, batches) in tables {
                let schema = batches
                    .first()
                    .map(|b| b.schema())
                    .or_else(|| tuopin::schema::table_spec(name).map(|s| s.schema()))
                    .ok_or_else(|| TuopinError::new_err(format!("no schema for {name}")))?;
                d.set_item(name, to_pyarrow(py, (batches, schema))?)?;
            }
            Ok(Some(d.unbind()))
        }
    }
}

/// Write the Parquet dataset `src` as the national system's exports into
/// `out`: `format` csv or xlsx, `headers` en or zh (Chinese headers,
/// labels, 是/否, dates), `encoding` utf-8 or gb18030 (CSV). Returns the
/// files written.
#[pyfunction]
#[pyo3(signature = (src, out, format="csv", headers="zh", encoding="gb18030", part_rows=1_000_000))]
fn export(
    py: Python<'_>,
    src: String,
    out: String,
    format: &str,
    headers: &str,
    encoding: &str,
    part_rows: usize,
) -> PyResult<Vec<String>> {
    use tuopin::io::exporting::{export_dataset, ExportOptions};
    let options = ExportOptions {
        format: format.parse().map_err(to_py)?,
        headers: headers.parse().map_err(to_py)?,
        encoding: encoding.parse().map_err(to_py)?,
        part_rows,
        ..ExportOptions::default()
    };
    let written = wait(py, async move { export_dataset(src, out, &options).await })?;
    Ok(written.iter().map(|p| p.display().to_string()).collect())
}

#[pymodule]
fn _tuopin(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TuopinError", py.get_type::<TuopinError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("RuleError", py.get_type::<RuleError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    m.add_class::<PyRuleSet>()?;
    m.add_class::<PyEngine>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(from_tables, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
