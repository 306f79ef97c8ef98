//! What prose says it counts: the number of functions a sentence states (in words or
//! digits), and whether its paragraph lists the functions it means.

use std::collections::BTreeSet;

use super::Counts;

pub const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// A number in words or digits; "twenty-four" as 24.
pub fn number(word: &str) -> Option<usize> {
    let w = word.to_ascii_lowercase();
    if let Some((tens, ones)) = w.split_once('-') {
        return Some(number(tens)? + number(ones)?);
    }
    NUMBER_WORDS
        .iter()
        .position(|n| *n == w)
        .or_else(|| w.parse().ok())
}

/// Which count a noun names: the functions, or the binaries (bootstraps) built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Functions,
    Binaries,
    /// "all five" with no noun, in a sentence about the functions.
    Either,
}

pub fn counted(noun: &str) -> Option<Counted> {
    match noun.to_ascii_lowercase().as_str() {
        "functions" | "lambdas" => Some(Counted::Functions),
        "bootstraps" | "binaries" => Some(Counted::Binaries),
        _ => None,
    }
}

/// The text in units a count is read in: a fenced block whole, a table row, and each sentence
/// of a paragraph.
pub fn units(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut paragraph = String::new();
    let mut fenced: Option<String> = None;
    let flush = |p: &mut String, out: &mut Vec<String>| {
        let joined = std::mem::take(p);
        let mut rest = joined.as_str();
        while let Some(i) = rest.find(". ") {
            out.push(rest[..=i].to_owned());
            rest = &rest[i + 2..];
        }
        if !rest.trim().is_empty() {
            out.push(rest.to_owned());
        }
    };
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            match fenced.take() {
                Some(block) => out.push(block),
                None => {
                    flush(&mut paragraph, &mut out);
                    fenced = Some(String::new());
                }
            }
            continue;
        }
        if let Some(block) = fenced.as_mut() {
            block.push_str(line);
            block.push('\n');
        } else if t.is_empty() || t.starts_with('|') || t.starts_with('#') {
            flush(&mut paragraph, &mut out);
            if !t.is_empty() {
                out.push(t.to_owned());
            }
        } else {
            // A list item starts a sentence.
            if t.starts_with("- ") || t.starts_with("* ") {
                flush(&mut paragraph, &mut out);
            }
            paragraph.push_str(t);
            paragraph.push(' ');
        }
    }
    flush(&mut paragraph, &mut out);
    out.extend(fenced);
    out
}

/// The text's paragraphs: split at blank lines, a fenced block kept whole.
pub fn paragraphs(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
        }
        if t.is_empty() && !fenced {
            out.push(String::new());
        } else {
            let last = out.last_mut().expect("one paragraph at least");
            last.push_str(line);
            last.push('\n');
        }
    }
    out.retain(|p| !p.trim().is_empty());
    out
}

/// How many functions each parenthesized list in `paragraph` names, by binary: a count the
/// paragraph spells out this way ("the five functions (post-confirmation, ...)") is explained.
pub fn listed_counts(paragraph: &str, binaries: &BTreeSet<String>) -> BTreeSet<usize> {
    paragraph
        .split('(')
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(inside, _)| inside))
        .map(|inside| {
            binaries
                .iter()
                .filter(|b| inside.contains(b.as_str()))
                .count()
        })
        .filter(|n| *n > 0)
        .collect()
}

/// Whether a unit of text is about the functions: it says "function" or names one's binary.
pub fn about_functions(unit: &str, binaries: &BTreeSet<String>) -> bool {
    let lower = unit.to_ascii_lowercase();
    lower.contains("function") || binaries.iter().any(|b| lower.contains(b.as_str()))
}

/// Each count of the functions `text` states that the template does not bear out, with the
/// words around it. A count is "all N" (with no other noun after it) in a sentence about the
/// functions, "N functions" or "N bootstraps" after "all", "the", "these", "those", "same" or at
/// a sentence's start, and "N Lambda functions" anywhere. "what two functions share" counts
/// nothing; a count its paragraph lists in parentheses, function by function, is explained.
pub fn stated_count_problems(text: &str, n: Counts, binaries: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for paragraph in paragraphs(text) {
        problems.extend(paragraph_count_problems(&paragraph, n, binaries));
    }
    problems
}

pub fn paragraph_count_problems(
    paragraph: &str,
    n: Counts,
    binaries: &BTreeSet<String>,
) -> Vec<String> {
    let explained = listed_counts(paragraph, binaries);
    let mut problems = Vec::new();
    for unit in units(paragraph) {
        let words: Vec<&str> = unit.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            let Some(count) = number(bare) else { continue };
            // Punctuation after the number: nothing follows it in this phrase.
            let ends_phrase = word.ends_with([',', '.', ':', ';', ')', '?', '!']);
            let before = i
                .checked_sub(1)
                .map(|j| words[j].trim_matches(|c: char| !c.is_ascii_alphanumeric()))
                .map(str::to_ascii_lowercase);
            let next = |k: usize| {
                words
                    .get(i + k)
                    .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
                    .unwrap_or_default()
            };
            let (noun, lambda) = if ends_phrase {
                ("", false)
            } else if next(1).eq_ignore_ascii_case("lambda") {
                (next(2), true)
            } else {
                (next(1), false)
            };
            let first = i == 0 || words[..i].iter().all(|w| w.starts_with(['-', '*', '#']));
            let kind = match (counted(noun), before.as_deref()) {
                (Some(kind), _) if lambda => Some(kind),
                (Some(kind), Some("all" | "the" | "these" | "those" | "same")) => Some(kind),
                (Some(kind), _) if first => Some(kind),
                (Some(_), _) => None,
                // "all five resolve", "all three:" in a sentence about the functions; not "all
                // three event parsers" (another noun, counting something else).
                (None, Some("all"))
                    if !(noun.ends_with('s') && noun.len() > 2)
                        && about_functions(&unit, binaries) =>
                {
                    Some(Counted::Either)
                }
                (None, _) => None,
            };
            let ok = match kind {
                None => continue,
                Some(Counted::Functions) => [n.total, n.default].contains(&count),
                Some(Counted::Binaries) => [n.binaries, n.total].contains(&count),
                Some(Counted::Either) => [n.total, n.default, n.binaries].contains(&count),
            };
            if !ok && !explained.contains(&count) {
                let phrase = words[i.saturating_sub(1)..(i + 3).min(words.len())].join(" ");
                problems.push(format!(
                    "\"{phrase}\": the template has {} functions ({} in a default deploy) from {} binaries",
                    n.total, n.default, n.binaries
                ));
            }
        }
    }
    problems
}
