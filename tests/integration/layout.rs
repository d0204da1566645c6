//! The maps of the code stay true: every `lib.rs` module map names each of the crate's modules
//! and no file or module that is not there, and the README's layout names only folders and
//! files that exist. A map that lies sends a newcomer the wrong way.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The workspace members, from the root `Cargo.toml`.
fn members() -> Vec<String> {
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let block = toml.split("members = [").nth(1).unwrap();
    let block = block.split(']').next().unwrap();
    block
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The `//!` lines of a file.
fn inner_docs(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a `lib.rs` declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn declared_modules(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
                .or_else(|| l.strip_prefix("pub(crate) mod "))?;
            rest.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// Backticked words in `docs` that name a file or folder (`x.rs`, `a/b.rs`, `dir/`).
fn named_paths(docs: &str) -> Vec<String> {
    docs.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.contains(' ')
                && !w.contains("::")
                && !w.starts_with('/')
                && (w.ends_with(".rs") || (w.ends_with('/') && w.len() > 1))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_module_map_names_its_modules_and_only_files_that_exist() {
    let mut wrong = Vec::new();
    for member in members() {
        let src = root().join(&member).join("src");
        let Ok(lib) = std::fs::read_to_string(src.join("lib.rs")) else {
            continue;
        };
        let docs = inner_docs(&lib);
        for module in declared_modules(&lib) {
            if !docs.contains(&format!("`{module}`")) && !docs.contains(&format!("[`{module}`]")) {
                wrong.push(format!(
                    "{member}: module `{module}` is missing from the map"
                ));
            }
        }
        for path in named_paths(&docs) {
            let exists = src.join(&path).exists()
                || root().join(&member).join(&path).exists()
                || root().join(&path).exists();
            if !exists {
                wrong.push(format!(
                    "{member}: the map names `{path}`, which is not there"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_readme_layout_names_only_what_exists() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let layout = readme
        .split("## Layout")
        .nth(1)
        .and_then(|l| l.split("```text").nth(1))
        .and_then(|l| l.split("```").next())
        .expect("the README has a layout block");
    let mut wrong = Vec::new();
    let mut top = PathBuf::new();
    for line in layout.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if !line.starts_with(' ') && !first.is_empty() {
            top = root().join(first);
            if !top.exists() {
                wrong.push(format!("`{first}` is not there"));
            }
        }
        // Paths inside a crate: `src/…` or a file name, braces expanded one level.
        for word in line
            .split_whitespace()
            .skip(usize::from(!line.starts_with(' ')))
        {
            let word = word.trim_end_matches([',', ';', ')', '.']);
            let word = word.trim_start_matches('(');
            if !(word.starts_with("src/") || word.starts_with("integration/")) {
                continue;
            }
            for path in expand(word) {
                if !top.join(&path).exists() {
                    wrong.push(format!("`{path}` under `{}` is not there", top.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `src/{a,b}/` → `src/a/`, `src/b/` (one level of braces, nested ones kept whole).
fn expand(word: &str) -> Vec<String> {
    let Some(open) = word.find('{') else {
        return vec![word.to_owned()];
    };
    let Some(close) = word.rfind('}') else {
        return vec![word.to_owned()];
    };
    let (head, inner, tail) = (&word[..open], &word[open + 1..close], &word[close + 1..]);
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .flat_map(|p| {
            let p = p.split('{').next().unwrap_or(p);
            expand(&format!("{head}{p}{tail}"))
        })
        .collect()
}
