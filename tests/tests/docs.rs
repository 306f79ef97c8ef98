//! The README and the guides under `docs/` link to each other by relative path and anchor:
//! every such link must land (the file is there, and when the link names an anchor, the file
//! has a heading that makes it, by GitHub's slug rule). The README stays short enough to read in
//! a few minutes, and links to every guide.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use harness::stack::repo_root;

/// The README's length, in lines, past which it is no longer a five-minute read.
const README_MAX_LINES: usize = 220;

/// What a link's target path turned out to be.
enum Target {
    Missing,
    Dir,
    File(String),
}

/// A relative link that does not land.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Broken {
    /// The file the link is in.
    from: PathBuf,
    line: usize,
    target: String,
    why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// No file or folder at the path.
    NoFile(PathBuf),
    /// The file has no heading that makes the anchor.
    NoAnchor(PathBuf),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = self.from.display();
        match &self.why {
            Why::NoFile(p) => write!(
                f,
                "{from}:{}: ({}) points at {}, which does not exist",
                self.line,
                self.target,
                p.display()
            ),
            Why::NoAnchor(p) => write!(
                f,
                "{from}:{}: ({}) names an anchor no heading of {} makes",
                self.line,
                self.target,
                p.display()
            ),
        }
    }
}

/// A Markdown link found in a document: the line it starts on and its target as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// GitHub's anchor for a heading: the rendered text lowercased, every character that is not a
/// letter, digit, space, `-` or `_` dropped (backticks, commas, apostrophes, parentheses), and
/// each space made a `-`.
fn slug(heading: &str) -> String {
    heading_text(heading)
        .trim()
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// A heading's text as rendered: an inline link `[text](url)` shows only its text.
fn heading_text(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(i) = rest.find("](") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => rest = &after[j + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a line opens or closes a fenced code block: its fence character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start();
    let c = t.chars().next().filter(|&c| matches!(c, '`' | '~'))?;
    let n = t.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// The document's lines with the contents of fenced code blocks (fences included) blanked, so
/// that nothing inside them is read as a heading or a link; line numbers stay as they were.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut open: Option<(char, usize)> = None;
    text.lines()
        .map(|line| match (open, fence(line)) {
            (None, Some(f)) => {
                open = Some(f);
                ""
            }
            (Some((c, n)), Some((c2, n2))) if c == c2 && n2 >= n && line.trim().len() == n2 => {
                open = None;
                ""
            }
            (Some(_), _) => "",
            (None, None) => line,
        })
        .collect()
}

/// Every anchor the document's headings make (ATX `## Title` and setext `Title` over `---`),
/// with GitHub's `-1`, `-2` suffixes for a heading whose slug came before.
fn anchors(text: &str) -> Vec<String> {
    let lines = prose_lines(text);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut add = |heading: &str| {
        let s = slug(heading);
        let n = seen.entry(s.clone()).or_insert(0);
        out.push(if *n == 0 { s } else { format!("{s}-{n}") });
        *n += 1;
    };
    for (i, line) in lines.iter().enumerate() {
        if let Some(h) = atx_heading(line) {
            add(h);
        } else if i > 0 && is_setext_underline(line) && is_plain_text(lines[i - 1]) {
            add(lines[i - 1]);
        }
    }
    out
}

/// The text of an ATX heading (`#` to `######`, a space, the text, optional closing `#`s).
fn atx_heading(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let t = &line[indent..];
    let level = t.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let rest = rest.trim();
    let closed = rest.trim_end_matches('#');
    let text = if closed.is_empty() || closed.ends_with(' ') {
        closed
    } else {
        rest
    };
    Some(text.trim())
}

fn is_setext_underline(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && (t.chars().all(|c| c == '=') || t.chars().all(|c| c == '-'))
}

/// A line that can be a setext heading's text: not blank, not a list item, table, quote or
/// heading of its own.
fn is_plain_text(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty()
        && line.len() - t.len() <= 3
        && !["#", "- ", "* ", "+ ", "|", ">"]
            .iter()
            .any(|p| t.starts_with(p))
}

/// Every inline link and image `[text](target)` outside code, and every reference definition
/// `[label]: target`, with the line it is on.
fn links(text: &str) -> Vec<Link> {
    let lines = prose_lines(text);
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(target) = reference_definition(line) {
            out.push(Link {
                line: i + 1,
                target,
            });
        }
    }
    let prose = lines.join("\n");
    let chars: Vec<char> = prose.chars().collect();
    let line_of = |pos: usize| chars[..pos].iter().filter(|&&c| c == '\n').count() + 1;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '`' => i = skip_code_span(&chars, i),
            '[' => match inline_link(&chars, i) {
                Some((target, end)) => {
                    out.push(Link {
                        line: line_of(i),
                        target,
                    });
                    i = end;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out.sort_by_key(|l| l.line);
    out
}

/// Past a code span that opens at `start` (a run of backticks closed by a run of the same
/// length); a run that is never closed is only text.
fn skip_code_span(chars: &[char], start: usize) -> usize {
    let run = chars[start..].iter().take_while(|&&c| c == '`').count();
    let mut j = start + run;
    while j < chars.len() {
        if chars[j] == '`' {
            let n = chars[j..].iter().take_while(|&&c| c == '`').count();
            if n == run {
                return j + n;
            }
            j += n;
        } else {
            j += 1;
        }
    }
    start + run
}

/// The target of an inline link whose text opens at `open` (`[`), and where the link ends.
fn inline_link(chars: &[char], open: usize) -> Option<(String, usize)> {
    let mut depth = 0usize;
    let mut j = open;
    let close = loop {
        match chars.get(j)? {
            '\\' => j += 1,
            '`' => {
                j = skip_code_span(chars, j);
                continue;
            }
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break j;
                }
            }
            _ => {}
        }
        j += 1;
    };
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let mut depth = 0usize;
    let mut k = close + 1;
    let end = loop {
        match chars.get(k)? {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    break k;
                }
            }
            '\n' if chars.get(k + 1) == Some(&'\n') => return None,
            _ => {}
        }
        k += 1;
    };
    let inside: String = chars[close + 2..end].iter().collect();
    let target = link_destination(&inside)?;
    Some((target, end + 1))
}

/// The destination of `(destination "title")`: `<…>` or the first word.
fn link_destination(inside: &str) -> Option<String> {
    let inside = inside.trim();
    if let Some(rest) = inside.strip_prefix('<') {
        return rest.split_once('>').map(|(d, _)| d.to_owned());
    }
    inside.split_whitespace().next().map(str::to_owned)
}

/// `[label]: target`, up to three spaces in.
fn reference_definition(line: &str) -> Option<String> {
    let t = line.strip_prefix("   ").or_else(|| line.strip_prefix("  "));
    let t = t.or_else(|| line.strip_prefix(' ')).unwrap_or(line);
    let rest = t.strip_prefix('[')?;
    let (label, after) = rest.split_once("]:")?;
    if label.is_empty() || label.starts_with('^') {
        return None;
    }
    link_destination(after)
}

/// Whether a target leaves the repository (a web address or a mail address).
fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// `a/b/../c` as `a/c`, without asking the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Every relative link in `text` (the file at `from`) that does not land. `lookup` says what is
/// at a path: the checker itself reads no file.
fn check(from: &Path, text: &str, lookup: &dyn Fn(&Path) -> Target) -> Vec<Broken> {
    let dir = from.parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for link in links(text) {
        if is_external(&link.target) {
            continue;
        }
        let (path, anchor) = match link.target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (link.target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            from.to_path_buf()
        } else {
            normalize(&dir.join(path.replace("%20", " ")))
        };
        let body = if path.is_empty() {
            Target::File(text.to_owned())
        } else {
            lookup(&resolved)
        };
        let why = match (body, anchor) {
            (Target::Missing, _) => Some(Why::NoFile(resolved)),
            (_, None) => None,
            (Target::File(body), Some(a)) if is_markdown(&resolved) => {
                if anchors(&body).iter().any(|h| h == a) {
                    None
                } else {
                    Some(Why::NoAnchor(resolved))
                }
            }
            // GitHub's line anchors (`#L12`, `#L12-L20`) on any other file.
            (Target::File(_), Some(a)) if is_line_anchor(a) => None,
            (_, Some(_)) => Some(Why::NoAnchor(resolved)),
        };
        if let Some(why) = why {
            broken.push(Broken {
                from: from.to_path_buf(),
                line: link.line,
                target: link.target,
                why,
            });
        }
    }
    broken
}

fn is_markdown(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md")
}

fn is_line_anchor(anchor: &str) -> bool {
    let line = |s: &str| {
        s.strip_prefix('L')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    match anchor.split_once('-') {
        Some((a, b)) => line(a) && line(b),
        None => line(anchor),
    }
}

/// What is at a path under the repository root.
fn on_disk(root: &Path) -> impl Fn(&Path) -> Target + '_ {
    move |rel: &Path| {
        let p = root.join(rel);
        if p.is_dir() {
            Target::Dir
        } else {
            fs::read_to_string(&p).map_or(Target::Missing, Target::File)
        }
    }
}

/// `docs/*.md`, relative to the repository root, in order.
fn guides(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("a readable entry of docs/").path())
        .filter(|p| is_markdown(p))
        .map(|p| PathBuf::from("docs").join(p.file_name().expect("a file name")))
        .collect();
    out.sort();
    out
}

#[test]
fn every_relative_link_in_the_readme_and_the_guides_lands() {
    let root = repo_root();
    let lookup = on_disk(&root);
    let mut files = vec![PathBuf::from("README.md")];
    files.extend(guides(&root));
    assert!(files.len() > 1, "docs/ holds no guide");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = fs::read_to_string(root.join(file)).unwrap();
        checked += links(&text)
            .iter()
            .filter(|l| !is_external(&l.target))
            .count();
        broken.extend(check(file, &text, &lookup));
    }
    assert!(
        checked >= files.len(),
        "only {checked} relative links in {} files: is the link finder reading them?",
        files.len()
    );
    let report: Vec<String> = broken.iter().map(ToString::to_string).collect();
    assert!(
        broken.is_empty(),
        "{} of {checked} relative links do not land:\n{}",
        broken.len(),
        report.join("\n")
    );
}

#[test]
fn the_link_check_reports_a_missing_file_and_a_missing_anchor() {
    let guide = "\
# A guide

## Who may move a rule

## `sam local invoke` (needs Docker)

## The stack's own wiring

## Notes

## Notes

```sh
## not a heading: inside a fence
```
";
    let readme = "\
# Title

Fine: [rule](docs/guide.md#who-may-move-a-rule), [sam](docs/guide.md#sam-local-invoke-needs-docker),
[wiring](docs/guide.md#the-stacks-own-wiring), [second notes](docs/guide.md#notes-1), [the guide](docs/guide.md),
[a folder](docs/), [here](#title), [web](https://example.com/nowhere.md#x), [mail](mailto:a@example.com).

Broken: [gone](docs/missing.md) and
[no such heading](docs/guide.md#who-may-move-a-rul).

Not links: `[code](docs/missing.md)`, and in a fence:

```md
[fenced](docs/also-missing.md)
```

Not a heading's anchor: [fenced heading](docs/guide.md#not-a-heading-inside-a-fence).
";
    let files: HashMap<PathBuf, &str> = [(PathBuf::from("docs/guide.md"), guide)].into();
    let lookup = |p: &Path| {
        if p == Path::new("docs") {
            Target::Dir
        } else {
            files
                .get(p)
                .map_or(Target::Missing, |t| Target::File((*t).to_owned()))
        }
    };
    let broken = check(Path::new("README.md"), readme, &lookup);
    let expected = vec![
        Broken {
            from: PathBuf::from("README.md"),
            line: 7,
            target: "docs/missing.md".to_owned(),
            why: Why::NoFile(PathBuf::from("docs/missing.md")),
        },
        Broken {
            from: PathBuf::from("README.md"),
            line: 8,
            target: "docs/guide.md#who-may-move-a-rul".to_owned(),
            why: Why::NoAnchor(PathBuf::from("docs/guide.md")),
        },
        Broken {
            from: PathBuf::from("README.md"),
            line: 16,
            target: "docs/guide.md#not-a-heading-inside-a-fence".to_owned(),
            why: Why::NoAnchor(PathBuf::from("docs/guide.md")),
        },
    ];
    assert_eq!(broken, expected);

    // A guide linking back up, to a file and to an anchor of another guide.
    let other =
        "See [the README](../README.md#title) and [a rule](guide.md#notes), [bad](../nope.md).";
    let files_up: HashMap<PathBuf, &str> = [
        (PathBuf::from("README.md"), readme),
        (PathBuf::from("docs/guide.md"), guide),
    ]
    .into();
    let lookup_up = |p: &Path| {
        files_up
            .get(p)
            .map_or(Target::Missing, |t| Target::File((*t).to_owned()))
    };
    let broken = check(Path::new("docs/other.md"), other, &lookup_up);
    assert_eq!(
        broken
            .iter()
            .map(|b| (b.target.as_str(), &b.why))
            .collect::<Vec<_>>(),
        [("../nope.md", &Why::NoFile(PathBuf::from("nope.md")))]
    );
}

#[test]
fn anchors_follow_githubs_slug_rule() {
    for (heading, anchor) in [
        ("Who may move a rule", "who-may-move-a-rule"),
        ("The stack's own wiring", "the-stacks-own-wiring"),
        (
            "`sam local invoke` (needs Docker)",
            "sam-local-invoke-needs-docker",
        ),
        (
            "Paced, resumable passes over the user pool",
            "paced-resumable-passes-over-the-user-pool",
        ),
        ("Report, then remediate", "report-then-remediate"),
        ("What CI runs", "what-ci-runs"),
        ("snake_case and-dash: kept", "snake_case-and-dash-kept"),
        ("A [linked](x.md) word", "a-linked-word"),
    ] {
        assert_eq!(slug(heading), anchor, "{heading}");
    }
    let doc = "# Notes\n\nText\n\n## Notes ##\n\nNotes\n-----\n\n```\n# Notes\n```\n";
    assert_eq!(anchors(doc), ["notes", "notes-1", "notes-2"]);
}

#[test]
fn the_readme_is_short_and_links_to_every_guide() {
    let root = repo_root();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; at most {README_MAX_LINES}: move the detail to a guide in docs/"
    );
    let linked: Vec<PathBuf> = links(&readme)
        .into_iter()
        .filter(|l| !is_external(&l.target))
        .map(|l| normalize(Path::new(l.target.split('#').next().unwrap_or(""))))
        .collect();
    let guides = guides(&root);
    assert!(!guides.is_empty(), "docs/ holds no guide");
    let unlinked: Vec<String> = guides
        .iter()
        .filter(|g| !linked.contains(g))
        .map(|g| g.display().to_string())
        .collect();
    assert!(
        unlinked.is_empty(),
        "README.md links to no {}",
        unlinked.join(", ")
    );
}

/// What is wrong with the runbook for a rollback stuck in `UPDATE_ROLLBACK_FAILED` (the
/// section whose heading names it): it must name `continue-update-rollback --resources-to-skip`,
/// and every resource it names to skip (after `--resources-to-skip`, and each list item's
/// leading `Name`) must be a resource of the template.
fn rollback_runbook_problems(text: &str, resources: &[String]) -> Vec<String> {
    let prose = prose_lines(text);
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = prose
        .iter()
        .position(|l| atx_heading(l).is_some_and(|h| h.contains("UPDATE_ROLLBACK_FAILED")))
    else {
        return vec!["no section for UPDATE_ROLLBACK_FAILED".into()];
    };
    let end = (start + 1..prose.len())
        .find(|&i| atx_heading(prose[i]).is_some())
        .unwrap_or(prose.len());
    // A command continued with `\` is one line.
    let joined = lines[start..end].join("\n").replace("\\\n", " ");
    let section: Vec<&str> = joined.lines().collect();
    let mut problems = Vec::new();
    if !section
        .iter()
        .any(|l| l.contains("continue-update-rollback") && l.contains("--resources-to-skip"))
    {
        problems.push("no `continue-update-rollback ... --resources-to-skip` command".into());
    }
    let mut named: Vec<String> = Vec::new();
    for line in &section {
        if let Some((_, after)) = line.split_once("--resources-to-skip") {
            named.extend(
                after
                    .split_whitespace()
                    .take_while(|w| !w.starts_with('-') && *w != "\\")
                    .map(str::to_owned),
            );
        }
        if let Some(item) = line.trim_start().strip_prefix("- ") {
            let head = item.split(':').next().unwrap_or("");
            named.extend(
                head.split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
                    .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric()))
                    .map(str::to_owned),
            );
        }
    }
    if named.is_empty() {
        problems.push("names no resource to skip".into());
    }
    for name in named {
        if !resources.contains(&name) {
            problems.push(format!("{name} is no resource of template.yaml"));
        }
    }
    problems
}

#[test]
fn the_rollback_runbook_continues_the_rollback_skipping_only_resources_the_template_has() {
    let root = repo_root();
    let template: serde_norway::Value =
        serde_norway::from_str(&fs::read_to_string(root.join("template.yaml")).unwrap()).unwrap();
    let serde_norway::Value::Mapping(declared) = &template["Resources"] else {
        panic!("template.yaml has no Resources")
    };
    let resources: Vec<String> = declared
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let guide = fs::read_to_string(root.join("docs/deploying.md")).unwrap();
    assert_eq!(
        rollback_runbook_problems(&guide, &resources),
        Vec::<String>::new()
    );

    let planted = guide.replace(
        "PoolPostConfirmationTrigger PoolPreSignUpTrigger",
        "PoolPostConfirmationTrigger PoolSignUpTrigger",
    );
    assert_eq!(
        rollback_runbook_problems(&planted, &resources),
        ["PoolSignUpTrigger is no resource of template.yaml"]
    );
    let planted = guide.replace("- `SchemaMigrations`:", "- `SchemaMigration`:");
    assert_eq!(
        rollback_runbook_problems(&planted, &resources),
        ["SchemaMigration is no resource of template.yaml"]
    );
    let planted = guide.replace("continue-update-rollback", "rollback-stack");
    assert_eq!(
        rollback_runbook_problems(&planted, &resources),
        ["no `continue-update-rollback ... --resources-to-skip` command"]
    );
    let planted = guide.replace("UPDATE_ROLLBACK_FAILED", "a failed rollback");
    assert_eq!(
        rollback_runbook_problems(&planted, &resources),
        ["no section for UPDATE_ROLLBACK_FAILED"]
    );
}
