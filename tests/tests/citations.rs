//! Every test the docs name exists. The guarantees, the guides and the closing notes cite
//! tests as `file::test` (an end-to-end test in `tests/tests/file.rs`) or
//! `module::tests::test` (a unit test beside its code); a test renamed or moved to another
//! file would otherwise leave a promise pointing at nothing. And `docs/guarantees.md` stays a
//! list a reader can take in: one short promise a line, under its function, with its tests.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use harness::stack::repo_root;

/// What the repository holds that a citation may name.
#[derive(Default)]
struct Index {
    /// End-to-end test files by stem, with the functions each defines.
    test_files: HashMap<String, HashSet<String>>,
    /// Source modules by name (a file's stem, or its folder's name for `mod.rs`), with the
    /// functions defined in any module of that name.
    modules: HashMap<String, HashSet<String>>,
    /// Workspace crates by their Rust name, with their top-level modules.
    crates: HashMap<String, HashSet<String>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Missing {
    line: usize,
    citation: String,
}

/// The names `fn name` defines in `text`.
fn functions(text: &str) -> HashSet<String> {
    text.split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The spans between backticks that look like a Rust path: `a::b`, `a::tests::b`.
fn paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (i, span) in line.split('`').enumerate() {
            let is_path = span.contains("::")
                && span.split("::").all(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                });
            if i % 2 == 1 && is_path {
                out.push((n + 1, span.to_owned()));
            }
        }
    }
    out
}

/// Whether `citation` names a test that does not exist. A path that names no test file and
/// no unit-test module (`shared::users`) is not a citation.
fn is_missing(citation: &str, index: &Index) -> bool {
    let segs: Vec<&str> = citation.split("::").collect();
    if let [.., module, "tests", test] = segs[..] {
        return !index.modules.get(module).is_some_and(|f| f.contains(test));
    }
    if let [file, test] = segs[..] {
        if test == "tests" {
            return !index.modules.contains_key(file);
        }
        if let Some(fns) = index.test_files.get(file) {
            // `harness::rie` and `sg_ip_update::config` name a crate's module, not a test.
            let a_module = index.crates.get(file).is_some_and(|m| m.contains(test));
            return !fns.contains(test) && !a_module;
        }
    }
    false
}

fn missing(text: &str, index: &Index) -> Vec<Missing> {
    paths(text)
        .into_iter()
        .filter(|(_, c)| is_missing(c, index))
        .map(|(line, citation)| Missing { line, citation })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// The workspace's members, from the root manifest's `members = [ ... ]`, one per line.
fn members(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .skip_while(|l| !l.starts_with("members = ["))
        .skip(1)
        .take_while(|l| !l.starts_with(']'))
        .filter_map(|l| {
            l.trim()
                .trim_end_matches(',')
                .strip_prefix('"')?
                .strip_suffix('"')
                .map(str::to_owned)
        })
        .collect()
}

/// A crate manifest's `name = "..."`, the first one (the `[package]` table comes first).
fn package_name(manifest: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"'))
        .expect("a package name")
        .to_owned()
}

fn index(root: &Path) -> Index {
    let mut index = Index::default();
    let mut tests = Vec::new();
    rust_files(&root.join("tests/tests"), &mut tests);
    for path in tests
        .iter()
        .filter(|p| p.parent() == Some(&root.join("tests/tests")))
    {
        let text = fs::read_to_string(path).unwrap();
        index.test_files.insert(stem(path), functions(&text));
    }
    for member in members(&fs::read_to_string(root.join("Cargo.toml")).unwrap()) {
        let crate_dir = root.join(&member);
        let name = package_name(&fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap())
            .replace('-', "_");
        let src = crate_dir.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for path in &files {
            let module = if stem(path) == "mod" {
                stem(path.parent().unwrap())
            } else {
                stem(path)
            };
            if path.parent() == Some(&src) || path.file_name().is_some_and(|f| f == "mod.rs") {
                index
                    .crates
                    .entry(name.clone())
                    .or_default()
                    .insert(module.clone());
            }
            let text = fs::read_to_string(path).unwrap();
            index
                .modules
                .entry(module)
                .or_default()
                .extend(functions(&text));
        }
    }
    index
}

#[test]
fn every_test_the_docs_cite_exists() {
    let root = repo_root();
    let index = index(&root);
    assert!(
        index.test_files.len() > 10 && index.modules.len() > 20,
        "the index found too little"
    );
    let mut docs = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    for entry in fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(PathBuf::from("docs").join(path.file_name().unwrap()));
        }
    }
    // The test files' own comments cite each other too.
    for stem in index.test_files.keys().filter(|s| *s != "citations") {
        docs.push(PathBuf::from(format!("tests/tests/{stem}.rs")));
    }
    let mut cited = 0;
    let mut report = Vec::new();
    for doc in &docs {
        let text = fs::read_to_string(root.join(doc)).unwrap();
        cited += paths(&text).len();
        for m in missing(&text, &index) {
            report.push(format!("{}:{}: `{}`", doc.display(), m.line, m.citation));
        }
    }
    assert!(
        cited > 50,
        "only {cited} paths found: is the finder reading the docs?"
    );
    assert!(
        report.is_empty(),
        "{} cited tests do not exist (renamed or moved to another file?):\n{}",
        report.len(),
        report.join("\n")
    );
}

#[test]
fn the_citation_check_names_a_test_that_moved_and_one_that_never_was() {
    let mut index = Index::default();
    index.test_files.insert(
        "template".into(),
        functions("#[test]\nfn the_template_parses() {}\n"),
    );
    index.test_files.insert(
        "template_stack".into(),
        functions("#[test]\nasync fn concurrency_is_capped_per_function() {}\n"),
    );
    index.test_files.insert("harness".into(), HashSet::new());
    index
        .crates
        .insert("harness".into(), ["rie".to_owned()].into());
    index.modules.insert(
        "rules_check".into(),
        functions("mod tests {\n    fn a_rule_past_its_lifetime() {}\n}"),
    );
    let doc = "\
Held by `template::the_template_parses` and `template_stack::concurrency_is_capped_per_function`.
Moved: `template::concurrency_is_capped_per_function`.
Unit: `rules_check::tests::a_rule_past_its_lifetime`, gone: `rules_check::tests::a_rule_never_written`.
Not tests: `shared::users`, `harness::rie`, `a::B`, `rules_check::tests`.
Never was: `harness::no_such_module`, `nowhere::tests::x`.
";
    assert_eq!(
        missing(doc, &index),
        [
            Missing {
                line: 2,
                citation: "template::concurrency_is_capped_per_function".into()
            },
            Missing {
                line: 3,
                citation: "rules_check::tests::a_rule_never_written".into()
            },
            Missing {
                line: 5,
                citation: "harness::no_such_module".into()
            },
            Missing {
                line: 5,
                citation: "nowhere::tests::x".into()
            },
        ]
    );
}

/// The most characters a guarantee's promise may take (its tests come after it): one line a
/// reader takes in at a glance.
const PROMISE_MAX_CHARS: usize = 160;

/// What keeps `docs/guarantees.md` a list to read, not only a table to search: past its
/// introduction, every line is a heading or one promise, `- promise — tests`, under a `## `
/// heading (the function it is about), its promise at most [`PROMISE_MAX_CHARS`], followed by
/// at least one test or check in backticks. Returns (line, problem).
fn guarantee_problems(text: &str) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut heading = false;
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        if line.starts_with("## ") {
            heading = true;
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with('|') {
            problems.push((n, "a table row: write one promise a line".to_owned()));
            continue;
        }
        let Some(item) = line.strip_prefix("- ") else {
            if heading {
                problems.push((n, "not a promise of its own: a wrapped line?".to_owned()));
            }
            continue;
        };
        if !heading {
            problems.push((n, "a promise before any function's heading".to_owned()));
        }
        let Some((promise, tests)) = item.split_once(" — ") else {
            problems.push((n, "no ` — ` and the tests that keep it".to_owned()));
            continue;
        };
        let chars = promise.chars().count();
        if chars > PROMISE_MAX_CHARS {
            problems.push((
                n,
                format!("the promise is {chars} characters, over {PROMISE_MAX_CHARS}"),
            ));
        }
        if !tests.contains('`') {
            problems.push((n, "names no test in backticks".to_owned()));
        }
    }
    problems
}

#[test]
fn every_guarantee_is_one_short_line_under_a_heading_with_its_test() {
    let text = fs::read_to_string(repo_root().join("docs/guarantees.md")).unwrap();
    let promises = text.lines().filter(|l| l.starts_with("- ")).count();
    assert!(
        promises > 100,
        "only {promises} promises found: is the check reading the list?"
    );
    let problems = guarantee_problems(&text);
    assert!(
        problems.is_empty(),
        "docs/guarantees.md:\n{}",
        problems
            .iter()
            .map(|(n, p)| format!("{n}: {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_guarantee_check_names_a_long_promise_a_table_row_a_wrapped_line_and_a_promise_without_a_test()
 {
    let long = "a".repeat(PROMISE_MAX_CHARS + 1);
    let fits = "a".repeat(PROMISE_MAX_CHARS);
    let doc = format!(
        "\
# Guarantees

An introduction, free to wrap
onto more lines.

- A promise before any heading — `post_confirmation::a`

## post-confirmation

- {fits} — `post_confirmation::a`
- {long} — `post_confirmation::a`
| a promise | `post_confirmation::a` |
- A promise wrapped onto
  a second line — `post_confirmation::a`
- A promise with no test
- A promise with a test named in prose — the harness

### A subsection

- A promise under a subsection — `post_confirmation::a`
"
    );
    let problems: Vec<usize> = guarantee_problems(&doc)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        problems,
        [6, 11, 12, 13, 14, 15, 16],
        "{:#?}",
        guarantee_problems(&doc)
    );
}
