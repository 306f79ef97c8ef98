//! The README's numbers and lists come from the code, not from memory. Two blocks of README.md
//! are generated, and this file checks that they are what the code says today:
//!
//! - between `<!-- functions:begin -->` and `<!-- functions:end -->`: every
//!   `AWS::Serverless::Function` of template.yaml, its binary and crate, the condition it is
//!   deployed under and what starts it (a Cognito trigger of the pool, an event, its Function
//!   URL, a custom resource, another function's Invoke), with the counts;
//! - between `<!-- prerequisites:begin -->` and `<!-- prerequisites:end -->`: the tool versions
//!   of toolchain.env and Rust's `rust-version` and edition from Cargo.toml.
//!
//! After changing the template or the toolchain, rewrite both blocks with
//! `UPDATE_README=1 cargo test -p harness --test readme_facts` and read the diff.
//!
//! Prose that counts the functions ("four functions", "all three") is checked against the
//! template too, in README.md and in the guides under `docs/`; every path the README names in
//! backticks exists. The reserved concurrency and connection totals are checked where they are
//! stated (`template_deploy::the_stated_reservations_and_connections_are_what_the_functions_reserve`):
//! the README does not repeat them.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

use harness::stack::repo_root;
use serde_norway::Value;

mod common;
#[path = "readme_facts/prose.rs"]
mod prose;
use common::{get_att_arn, layout::Layout, resources_of_type, strings, tagged, template, untag};
use prose::{number, stated_count_problems, units};

/// One function of the template, as the README's table shows it.
#[derive(Debug)]
struct Function {
    id: String,
    binary: String,
    code_uri: String,
    /// The condition it is deployed under, with the parameters that condition reads.
    condition: Option<(String, BTreeSet<String>)>,
    started_by: Vec<String>,
}

/// Whether `v` holds `!GetAtt ID.Arn` anywhere (under an `!If`, in a list).
fn names_arn_of(v: &Value, id: &str) -> bool {
    if get_att_arn(v).as_deref() == Some(id) {
        return true;
    }
    match v {
        Value::Tagged(t) => names_arn_of(&t.value, id),
        Value::Mapping(m) => m.values().any(|x| names_arn_of(x, id)),
        Value::Sequence(items) => items.iter().any(|x| names_arn_of(x, id)),
        _ => false,
    }
}

/// Whether `v` holds an IAM statement allowing `lambda:InvokeFunction` on function `id`.
fn grants_invoke_of(v: &Value, id: &str) -> bool {
    match v {
        Value::Tagged(t) => grants_invoke_of(&t.value, id),
        Value::Mapping(m) => {
            let invokes = m.get("Action").is_some_and(|a| {
                strings(a)
                    .iter()
                    .any(|action| action == "lambda:InvokeFunction")
            });
            let on_it = m.get("Resource").is_some_and(|r| names_arn_of(r, id));
            (invokes && on_it) || m.values().any(|x| grants_invoke_of(x, id))
        }
        Value::Sequence(items) => items.iter().any(|x| grants_invoke_of(x, id)),
        _ => false,
    }
}

/// A value as the README shows it: a parameter as its name and default, a string as itself.
fn shown(t: &Value, v: &Value) -> String {
    if let Some((tag, name)) = tagged(v) {
        if tag == "Ref" {
            let name = name.as_str().unwrap_or_default();
            let default = t["Parameters"][name]["Default"]
                .as_str()
                .unwrap_or_default();
            return format!("`{name}`, default `{default}`");
        }
    }
    format!("`{}`", strings(v).join("`, `"))
}

/// The parameters condition `name` is made of, through the conditions it names.
fn condition_parameters(t: &Value, v: &Value, out: &mut BTreeSet<String>) {
    if let Some((tag, inner)) = tagged(v) {
        match (tag.as_str(), inner.as_str()) {
            ("Ref", Some(name)) if !t["Parameters"][name].is_null() => {
                out.insert(name.to_owned());
            }
            ("Condition", Some(name)) => condition_parameters(t, &t["Conditions"][name], out),
            _ => condition_parameters(t, inner, out),
        }
        return;
    }
    match v {
        Value::Mapping(m) => m.values().for_each(|x| condition_parameters(t, x, out)),
        Value::Sequence(items) => items.iter().for_each(|x| condition_parameters(t, x, out)),
        _ => {}
    }
}

/// What starts function `id`, each source in the template's words.
fn started_by(t: &Value, id: &str, f: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (_, pool) in resources_of_type(t, "AWS::Cognito::UserPool") {
        if let Value::Mapping(config) = &pool["Properties"]["LambdaConfig"] {
            for (trigger, target) in config {
                if names_arn_of(target, id) {
                    out.push(format!(
                        "Cognito's `{}` trigger",
                        trigger.as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    let props = &f["Properties"];
    if let Some(url) = props.get("FunctionUrlConfig") {
        out.push(format!(
            "its Function URL (`AuthType: {}`)",
            untag(&url["AuthType"]).as_str().unwrap_or("?")
        ));
    }
    if let Value::Mapping(events) = &props["Events"] {
        for (_, event) in events {
            let p = &event["Properties"];
            let source = match event["Type"].as_str().unwrap_or_default() {
                "EventBridgeRule" => {
                    let pattern = &p["Pattern"];
                    let kinds = strings(&pattern["detail-type"]);
                    if kinds.iter().any(|k| k == "AWS API Call via CloudTrail") {
                        format!(
                            "CloudTrail's `{}` calls, by an EventBridge rule",
                            strings(&pattern["source"]).join("`, `")
                        )
                    } else {
                        let bus = p.get("EventBusName").map_or_else(
                            || "the default bus".to_owned(),
                            |b| format!("the bus {}", shown(t, b)),
                        );
                        format!(
                            "`{}` events from `{}` on {bus}",
                            kinds.join("`, `"),
                            strings(&pattern["source"]).join("`, `")
                        )
                    }
                }
                "ScheduleV2" => format!(
                    "EventBridge Scheduler ({})",
                    shown(t, &p["ScheduleExpression"])
                ),
                other => format!("a `{other}` event"),
            };
            out.push(source);
        }
    }
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    let custom: Vec<String> = resources
        .values()
        .filter(|r| {
            r["Type"]
                .as_str()
                .is_some_and(|k| k.starts_with("Custom::"))
                && names_arn_of(&r["Properties"]["ServiceToken"], id)
        })
        .map(|r| format!("`{}`", r["Type"].as_str().unwrap_or_default()))
        .collect();
    if !custom.is_empty() {
        out.push(format!("CloudFormation, for {}", custom.join(", ")));
    }
    for (other, g) in resources_of_type(t, "AWS::Serverless::Function") {
        if other != id && grants_invoke_of(&g["Properties"]["Policies"], id) {
            out.push(format!("`{other}`'s Invoke"));
        }
    }
    out
}

/// Every function of the template, in the template's order.
fn functions(t: &Value) -> Vec<Function> {
    resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, f)| {
            let code_uri = f["Properties"]["CodeUri"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: a CodeUri"))
                .trim_end_matches('/')
                .to_owned();
            let binary = f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .map_or_else(
                    || code_uri.rsplit('/').next().unwrap_or_default().to_owned(),
                    str::to_owned,
                );
            Function {
                id: id.to_owned(),
                binary,
                code_uri,
                condition: f["Condition"].as_str().map(|c| {
                    let mut params = BTreeSet::new();
                    condition_parameters(t, &t["Conditions"][c], &mut params);
                    (c.to_owned(), params)
                }),
                started_by: started_by(t, id, f),
            }
        })
        .collect()
}

/// The numbers the README and the guides may state about the functions.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Functions the template defines (every part deployed creates them all).
    total: usize,
    /// Functions a deploy with every parameter left to its default creates.
    default: usize,
    /// Distinct binaries (`sam build` builds one bootstrap per binary).
    binaries: usize,
}

fn counts(t: &Value, fs: &[Function]) -> Counts {
    Counts {
        total: fs.len(),
        default: Layout::new(t, &[]).functions().len(),
        binaries: fs
            .iter()
            .map(|f| (&f.code_uri, &f.binary))
            .collect::<BTreeSet<_>>()
            .len(),
    }
}

const FUNCTIONS_BEGIN: &str = "<!-- functions:begin -->";
const FUNCTIONS_END: &str = "<!-- functions:end -->";
const PREREQUISITES_BEGIN: &str = "<!-- prerequisites:begin -->";
const PREREQUISITES_END: &str = "<!-- prerequisites:end -->";
const GENERATED: &str = "<!-- generated by tests/tests/readme_facts.rs: \
    UPDATE_README=1 cargo test -p harness --test readme_facts -->";

/// The README's functions block, between its markers.
fn functions_block(fs: &[Function], n: Counts) -> String {
    let mut out = format!(
        "{GENERATED}\n\n\
         [template.yaml](template.yaml) defines {} functions, built from {} binaries; a deploy \
         with every parameter left to its default creates {} of them.\n\n\
         | function (template.yaml) | crate | deployed when | started by |\n\
         |---|---|---|---|\n",
        n.total, n.binaries, n.default
    );
    for f in fs {
        let crate_dir = if f.code_uri.ends_with(&format!("/{}", f.binary)) {
            format!("`{}/`", f.code_uri)
        } else {
            format!("`{}` in `{}/`", f.binary, f.code_uri)
        };
        let condition = f.condition.as_ref().map_or_else(
            || "always".to_owned(),
            |(c, params)| {
                let params: Vec<String> = params.iter().map(|p| format!("`{p}`")).collect();
                format!("`{c}` (from {})", params.join(", "))
            },
        );
        out.push_str(&format!(
            "| `{}` | {crate_dir} | {condition} | {} |\n",
            f.id,
            f.started_by.join("; ")
        ));
    }
    out.push('\n');
    out
}

/// `KEY=VALUE` lines of toolchain.env.
fn toolchain() -> BTreeMap<String, String> {
    let text = fs::read_to_string(repo_root().join("toolchain.env")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The value of `key = "..."` in the workspace's Cargo.toml.
fn cargo_setting(key: &str) -> String {
    let text = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("Cargo.toml sets no {key}"))
}

/// The README's prerequisites block, between its markers.
fn prerequisites_block(env: &BTreeMap<String, String>, rust: &str, edition: &str) -> String {
    let v = |k: &str| {
        env.get(k)
            .unwrap_or_else(|| panic!("toolchain.env sets no {k}"))
            .clone()
    };
    let venv = "`scripts/python-env` installs it into `.venv`";
    let rows = [
        (
            "Rust".to_owned(),
            format!("{rust} or later (edition {edition})"),
            "rustup; `rust-version` in Cargo.toml".to_owned(),
        ),
        (
            "Python".to_owned(),
            format!("{} or later, with `venv`", v("PYTHON_MIN")),
            "Debian and Ubuntu: `apt-get install python3-venv`".to_owned(),
        ),
        (
            "cargo-lambda".to_owned(),
            format!(
                "{} (zig {})",
                v("CARGO_LAMBDA_VERSION"),
                v("ZIGLANG_VERSION")
            ),
            venv.to_owned(),
        ),
        (
            "AWS SAM CLI".to_owned(),
            format!(
                "{} ({} or later from elsewhere)",
                v("SAM_CLI_VERSION"),
                v("SAM_CLI_MIN")
            ),
            venv.to_owned(),
        ),
        (
            "cfn-lint".to_owned(),
            v("CFN_LINT_VERSION"),
            venv.to_owned(),
        ),
        ("moto".to_owned(), v("MOTO_VERSION"), venv.to_owned()),
        (
            "disk".to_owned(),
            format!("{} GiB free under the target dir", v("DISK_GIB_MIN")),
            "a fresh build, tests and `sam build`".to_owned(),
        ),
    ];
    let mut out = format!(
        "{GENERATED}\n\n\
         | tool | version | how |\n\
         |---|---|---|\n"
    );
    for (tool, version, how) in rows {
        out.push_str(&format!("| {tool} | {version} | {how} |\n"));
    }
    out.push('\n');
    out
}

/// `text` with the part between `begin` and `end` replaced by `block`; `None` when a marker
/// is missing.
fn with_block(text: &str, begin: &str, end: &str, block: &str) -> Option<String> {
    let start = text.find(begin)? + begin.len();
    let stop = start + text[start..].find(end)?;
    Some(format!("{}\n{block}{}", &text[..start], &text[stop..]))
}

/// What differs between the README's block and the one the code makes: `None` when they
/// match. A line missing or extra is named.
fn block_problem(text: &str, begin: &str, end: &str, block: &str) -> Option<String> {
    let Some(expected) = with_block(text, begin, end, block) else {
        return Some(format!("README.md has no {begin} ... {end} block"));
    };
    if expected == text {
        return None;
    }
    let have: BTreeSet<&str> = text.lines().collect();
    let want: BTreeSet<&str> = expected.lines().collect();
    let missing: Vec<&&str> = want.difference(&have).collect();
    let extra: Vec<&&str> = have.difference(&want).collect();
    Some(format!(
        "the block {begin} is not what the code says; missing lines {missing:#?}, lines no \
         longer true {extra:#?}. Rewrite it: UPDATE_README=1 cargo test -p harness --test readme_facts"
    ))
}

/// The sentences of `text` that state a number of reserved executions or database
/// connections. The README states none: those totals are stated, and checked against the
/// template, in the `ReserveConcurrency` description and docs/deploying.md.
fn stated_budgets(text: &str) -> Vec<String> {
    units(text)
        .into_iter()
        .filter(|unit| {
            let lower = unit.to_ascii_lowercase();
            (lower.contains("reserv") || lower.contains("connection"))
                && unit
                    .split_whitespace()
                    .any(|w| number(w.trim_matches(|c: char| !c.is_ascii_alphanumeric())).is_some())
        })
        .collect()
}

/// The spans between backticks that name a path in the repository (`docs/x.md`,
/// `functions/a/src/`), build output under `target/` aside.
fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        for (i, span) in line.split('`').enumerate() {
            let looks_like_path = i % 2 == 1
                && span.contains('/')
                && span.starts_with(|c: char| c.is_ascii_alphabetic() || c == '.')
                && span
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
                && !span.starts_with("target/");
            if looks_like_path {
                out.push(span.to_owned());
            }
        }
    }
    out
}

fn missing_paths(text: &str, root: &Path) -> Vec<String> {
    named_paths(text)
        .into_iter()
        .filter(|p| !root.join(p).exists())
        .collect()
}

/// README.md with both blocks rewritten (and written back under `UPDATE_README=1`).
fn readme_and_blocks() -> (String, String, String) {
    let t = template();
    let fs = functions(&t);
    let functions = functions_block(&fs, counts(&t, &fs));
    let prerequisites = prerequisites_block(
        &toolchain(),
        &cargo_setting("rust-version"),
        &cargo_setting("edition"),
    );
    let path = repo_root().join("README.md");
    let mut readme = fs::read_to_string(&path).unwrap();
    if std::env::var_os("UPDATE_README").is_some() {
        for (begin, end, block) in [
            (FUNCTIONS_BEGIN, FUNCTIONS_END, &functions),
            (PREREQUISITES_BEGIN, PREREQUISITES_END, &prerequisites),
        ] {
            readme = with_block(&readme, begin, end, block)
                .unwrap_or_else(|| panic!("README.md has no {begin} ... {end} block"));
        }
        fs::write(&path, &readme).unwrap();
    }
    (readme, functions, prerequisites)
}

#[test]
fn every_function_of_the_template_is_started_by_something() {
    let t = template();
    let fs = functions(&t);
    assert!(!fs.is_empty());
    for f in &fs {
        assert!(!f.started_by.is_empty(), "nothing starts {f:?}");
    }
    // The sources the README's picture shows are the template's.
    let by_id: BTreeMap<&str, &Function> = fs.iter().map(|f| (f.id.as_str(), f)).collect();
    let has = |id: &str, words: &str| {
        by_id[id].started_by.iter().any(|s| s.contains(words)) || panic!("{id}: {words}")
    };
    has("PostConfirmationFunction", "`PostConfirmation`");
    has("PreSignUpFunction", "`PreSignUp`");
    has("SignInGuardFunction", "`PostAuthentication`");
    has("SgIpUpdateFunction", "Function URL (`AuthType: AWS_IAM`)");
    has("SgIpUpdateBusFunction", "`IpEventBusName`");
    has("DriftCheckFunction", "CloudTrail");
    has("DriftCheckFunction", "`DriftCheckListerFunction`'s Invoke");
    has("DriftCheckListerFunction", "EventBridge Scheduler");
    has(
        "SchemaMigrationsFunction",
        "`CfnResponderFunction`'s Invoke",
    );
    has("CfnResponderFunction", "`Custom::SchemaMigrations`");
    has("PoolTriggerFunction", "`Custom::CreatedPoolTriggers`");
}

#[test]
fn the_readme_lists_the_functions_the_template_deploys() {
    let (readme, functions, _) = readme_and_blocks();
    if let Some(problem) = block_problem(&readme, FUNCTIONS_BEGIN, FUNCTIONS_END, &functions) {
        panic!("{problem}");
    }
}

#[test]
fn the_readme_states_the_toolchain_that_toolchain_env_and_cargo_toml_state() {
    let (readme, _, prerequisites) = readme_and_blocks();
    if let Some(problem) = block_problem(
        &readme,
        PREREQUISITES_BEGIN,
        PREREQUISITES_END,
        &prerequisites,
    ) {
        panic!("{problem}");
    }
}

#[test]
fn the_block_check_fires_on_a_function_missing_and_on_a_missing_marker() {
    let t = template();
    let mut fs = functions(&t);
    let n = counts(&t, &fs);
    let block = functions_block(&fs, n);
    let readme = format!("# title\n\n{FUNCTIONS_BEGIN}\n{block}{FUNCTIONS_END}\n\nmore\n");
    assert_eq!(
        block_problem(&readme, FUNCTIONS_BEGIN, FUNCTIONS_END, &block),
        None
    );
    // A README written before a function was added: one row short, and a count one less.
    let dropped = fs.remove(1);
    let stale = format!(
        "# title\n\n{FUNCTIONS_BEGIN}\n{}{FUNCTIONS_END}\n",
        functions_block(
            &fs,
            Counts {
                total: n.total - 1,
                ..n
            }
        )
    );
    let problem = block_problem(&stale, FUNCTIONS_BEGIN, FUNCTIONS_END, &block)
        .expect("a function missing from the block");
    assert!(problem.contains(&dropped.id), "{problem}");
    let problem = block_problem("# title\n", FUNCTIONS_BEGIN, FUNCTIONS_END, &block)
        .expect("no block at all");
    assert!(problem.contains("no <!-- functions:begin -->"), "{problem}");
}

fn binaries(t: &Value) -> BTreeSet<String> {
    functions(t).into_iter().map(|f| f.binary).collect()
}

#[test]
fn the_readme_counts_the_functions_the_template_has() {
    let t = template();
    let n = counts(&t, &functions(&t));
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let problems = stated_count_problems(&readme, n, &binaries(&t));
    assert!(problems.is_empty(), "README.md: {problems:#?}");
}

#[test]
fn the_guides_count_the_functions_the_template_has() {
    let t = template();
    let n = counts(&t, &functions(&t));
    let mut problems = Vec::new();
    let mut guides: Vec<_> = fs::read_dir(repo_root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    guides.sort();
    for path in guides {
        let text = fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(repo_root()).unwrap_or(&path).display();
        for p in stated_count_problems(&text, n, &binaries(&t)) {
            problems.push(format!("{name}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_count_check_fires_on_a_wrong_count_and_lets_other_counts_be() {
    let n = Counts {
        total: 10,
        default: 8,
        binaries: 8,
    };
    let binaries = binaries(&template());
    let wrong = [
        "For teams running a web app. Four functions, one shared crate, deployed with AWS SAM.",
        "```\n post-confirmation ──▶ users\n all three: shared crate ─ config\n```\n",
        "The template deploys seven Lambda functions from six crates.",
        "every function depends on it, so all five resolve the same features.",
        "CI checks that all five bootstraps changed.",
        "The three functions depend on it, so new code never runs on an old schema.",
        "a debug build of the 9 functions for the x86_64 Linux target",
        "Twenty-one functions, one crate each.",
        "the same five functions (post-confirmation, drift-check) as before",
    ];
    for text in wrong {
        assert_eq!(
            stated_count_problems(text, n, &binaries).len(),
            1,
            "not caught: {text}"
        );
    }
    let right = [
        "Ten functions, one shared crate.",
        "all ten functions, and all 8 bootstraps",
        "What two functions share lives in `shared`.",
        "One binary, two functions: the lister and drift-check.",
        "The deploy refuses `DbProxyIamAuth=true` without all three. The proxy logs in.",
        "`events` sends any bytes through all three event parsers.",
        "the two Cognito functions and the three custom resources",
        "beside a build of the same five functions, each into an empty target dir. The five \
         functions are the ones the script lists (post-confirmation, sg-ip-update, drift-check, \
         pool-trigger, schema-migrations): it predates pre-sign-up, sign-in-guard and cfn-responder.",
    ];
    for text in right {
        assert_eq!(
            stated_count_problems(text, n, &binaries),
            Vec::<String>::new(),
            "{text}"
        );
    }
}

#[test]
fn every_path_the_readme_names_exists() {
    let root = repo_root();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let missing = missing_paths(&readme, &root);
    assert!(missing.is_empty(), "README.md names {missing:?}");
    // The check fires on a path that is not there.
    let planted = "event parsing: `functions/post-confirmation/src/event.rs`, `shared/src/`";
    assert_eq!(
        missing_paths(planted, &root),
        ["functions/post-confirmation/src/event.rs"]
    );
}

#[test]
fn the_readme_leaves_the_reservations_and_connections_to_the_checked_guide() {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let stated = stated_budgets(&readme);
    assert!(
        stated.is_empty(),
        "README.md states {stated:#?}: state it in docs/deploying.md, where \
         template_deploy::the_stated_reservations_and_connections_are_what_the_functions_reserve \
         checks it, and link there"
    );
    // The check fires on a planted total.
    let planted = "## Cost\n\nA default deploy reserves 30 executions. It holds at most \
                   twenty-four connections.\n";
    assert_eq!(stated_budgets(planted).len(), 2, "{planted}");
}
