//! The core's modules are layered: each uses only modules of layers below
//! its own (docs/CHOICES.md, "Layering"). This test reads every
//! `crate::<module>` path in `crates/core/src` (code, not comments) and
//! fails on an arrow that points up or sideways, so no import cycle can
//! creep back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may use the modules of lower layers
/// only (never its own layer's others, never a higher one).
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["schema"],
    &["codes", "links"],
    &["functions"],
    &["session", "rules", "sql"],
    &["table"],
    &["lines"],
    &["io", "synth"],
    &["metrics"],
    &["facts"],
    &["catalog"],
    &["validate"],
    &["dataset"],
    &["engine"],
    &["mpi", "quality"],
];

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`io/store.rs` → `io`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// What the crate root re-exports: `Engine` → `engine`, …
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            if !item.is_empty() {
                names.insert(item.to_string(), module.to_string());
            }
        }
    }
    names
}

/// Modules named by `crate::x` paths in the code of `text` (comment lines
/// and the text after `//` are left out).
fn uses(text: &str, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{')
                .collect();
            if name.starts_with('{') {
                // `use crate::{a, b}`: every name in the braces.
                let inner: String = after.chars().skip(1).take_while(|c| *c != '}').collect();
                for n in inner.split(',') {
                    let n = n.trim().split("::").next().unwrap_or("").trim();
                    if !n.is_empty() {
                        found.insert(n.to_string());
                    }
                }
            } else if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
        .into_iter()
        .map(|n| reexports.get(&n).cloned().unwrap_or(n))
        .collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = core_src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("source");
        let used = uses(&text, &reexports);
        graph
            .entry(module.clone())
            .or_default()
            .extend(used.into_iter().filter(|u| *u != module));
    }
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(mine) = layer_of(module) else {
            wrong.push(format!("module `{module}` is in no layer of LAYERS"));
            continue;
        };
        for u in used {
            match layer_of(u) {
                Some(theirs) if theirs < mine => {}
                Some(_) => wrong.push(format!("`{module}` uses `{u}`, which is not below it")),
                None => wrong.push(format!("`{module}` uses `{u}`, which is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    // The graph was read: the facade sits on the layers below it.
    assert!(graph["engine"].contains("catalog"), "{graph:?}");
    assert!(graph["validate"].contains("catalog"), "{graph:?}");
}

#[test]
fn the_reader_sees_crate_paths_in_code_only() {
    let reexports = BTreeMap::from([("Engine".to_string(), "engine".to_string())]);
    let text = "use crate::codes::{Level, roll_up_sql};\n\
                use crate::{error, schema::TABLES};\n\
                /// see [`crate::metrics`]\n\
                let e: crate::Engine = x; // crate::validate\n";
    let got = uses(text, &reexports);
    let want: BTreeSet<String> = ["codes", "error", "schema", "engine"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn no_core_file_is_over_600_lines_but_the_generator() {
    let src = core_src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("synth.rs"))
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("source").lines().count();
            (n > 650).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "{long:?}");
}
