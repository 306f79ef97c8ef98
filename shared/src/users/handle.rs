//! What makes a handle (and a sub) one the `users` table can hold and tell apart from the
//! others.

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
    None
}

/// Characters that show nothing or reorder what follows, so that two handles that look the
/// same differ: zero-width and joiner characters, bidirectional controls, the soft hyphen,
/// the byte-order mark, variation selectors and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E0FFF}')
}
