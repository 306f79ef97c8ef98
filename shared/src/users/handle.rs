//! What makes a handle (and a sub) one the `users` table can hold and tell apart from the
//! others.

use icu_properties::{
    CodePointMapData, CodePointSetData,
    props::{DefaultIgnorableCodePoint, GeneralCategory},
};

/// The longest handle accepted, in characters. A Cognito attribute may hold 2,048 characters
/// (up to 8 KiB of UTF-8), but a btree index entry holds at most 2,704 bytes: a longer handle
/// would pass every check and then fail the unique index on every attempt, the trigger's and
/// every backfill's. 64 characters are at most 256 bytes.
pub const MAX_HANDLE_CHARS: usize = 64;

/// The longest identity (`sub`) accepted, in characters: it is unique-indexed too. Cognito's
/// own subs are 36-character UUIDs.
pub const MAX_SUB_CHARS: usize = 128;

/// What makes a handle one this table can hold and tell apart from the others. The one
/// definition: the sign-up trigger, drift-check's backfill and the pre-sign-up check all call
/// it. `None`: the handle is fine.
pub fn handle_problem(handle: &str) -> Option<&'static str> {
    if handle.chars().count() > MAX_HANDLE_CHARS {
        return Some("it is longer than 64 characters");
    }
    if handle.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    // Compared by lower() alone, a full-width "Ａｎｄｒｅｗ" or a ligature would stand beside
    // "andrew"; a handle already in NFKC has none of those forms.
    if !unicode_normalization::is_nfkc(handle) {
        return Some(
            "it is not in Unicode normal form NFKC (full-width or compatibility characters)",
        );
    }
    if handle.chars().any(is_invisible) {
        return Some("it contains an invisible or direction-changing character");
    }
    // "andrew " and "andrew" look the same, and so do "an drew" and "an  drew".
    if handle.chars().any(|c| c != ' ' && c.is_whitespace()) {
        return Some("it contains a space other than U+0020");
    }
    if handle.starts_with(' ') || handle.ends_with(' ') || handle.contains("  ") {
        return Some("it starts or ends with a space, or has two in a row");
    }
    None
}

/// Characters that show nothing or reorder what follows, so that two handles that look the
/// same differ. From Unicode's own properties rather than a hand-kept list:
/// Default_Ignorable_Code_Point (zero-width and joiner characters, bidirectional controls, the
/// soft hyphen, variation selectors, Hangul fillers, tag characters, U+1BCA0..U+1BCA3,
/// U+1D173..U+1D17A, ...), the format characters (General_Category Cf, such as the
/// interlinear annotation marks U+FFF9..U+FFFB), and U+2800 BRAILLE PATTERN BLANK, a symbol
/// that is drawn as nothing.
fn is_invisible(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
        || c == '\u{2800}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_come_from_unicodes_properties_not_a_list() {
        let listed = ['\u{FFF9}', '\u{FFFA}', '\u{FFFB}', '\u{2800}']
            .into_iter()
            .chain('\u{1BCA0}'..='\u{1BCA3}')
            .chain('\u{1D173}'..='\u{1D17A}');
        // And what the hand-kept list had.
        let known = "\u{00AD}\u{034F}\u{061C}\u{115F}\u{180E}\u{200B}\u{200D}\u{202E}\u{2066}\
                     \u{3164}\u{FE0F}\u{FEFF}\u{FFA0}\u{E0001}\u{E0041}\u{E01EF}";
        for c in listed.chain(known.chars()) {
            for handle in [
                format!("{c}andrew"),
                format!("and{c}rew"),
                format!("andrew{c}"),
            ] {
                let problem = handle_problem(&handle);
                assert!(
                    problem.is_some_and(|p| p.contains("invisible") || p.contains("NFKC")),
                    "U+{:04X}: {problem:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn one_space_between_words_and_no_other() {
        assert_eq!(handle_problem("andrew brown"), None);
        assert_eq!(handle_problem("🦀 Ölçü مرحبا"), None);
        for handle in [" andrew", "andrew ", "andrew  brown", " ", "a \u{2028}b"] {
            assert!(handle_problem(handle).is_some(), "{handle:?}");
        }
        for (handle, says) in [
            (" andrew", "starts or ends"),
            ("andrew ", "starts or ends"),
            ("andrew  brown", "two in a row"),
            // White_Space beyond U+0020 that NFKC keeps.
            ("andrew\u{2028}brown", "other than U+0020"),
            ("andrew\u{2029}brown", "other than U+0020"),
            ("andrew\u{1680}brown", "other than U+0020"),
        ] {
            let problem = handle_problem(handle).unwrap();
            assert!(problem.contains(says), "{handle:?}: {problem}");
        }
        // The other spaces NFKC folds to U+0020 are refused as not NFKC.
        for c in ['\u{00A0}', '\u{2003}', '\u{3000}', '\u{202F}'] {
            assert!(
                handle_problem(&format!("a{c}b")).is_some(),
                "U+{:04X}",
                c as u32
            );
        }
    }
}
