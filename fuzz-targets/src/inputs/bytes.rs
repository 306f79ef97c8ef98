//! Byte-level mutations, the ones libFuzzer's `MutationDispatcher` tries first: bit flips,
//! special bytes, inserted or overwritten tokens, deleted, copied and spliced ranges, and
//! replaced numbers.

use super::{Generator, Rng};

/// Bytes that often sit on a parser's boundaries.
pub(super) const SPECIAL_BYTES: &[u8] = b"\0\x7f\x80\xff\"\\{}[]:,/.% 09-+eE\n\t";

/// Numbers at the edges of the integer and float types.
pub(super) const SPECIAL_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e999",
    "-1e-999",
    "0.5",
];

impl Generator {
    /// One byte-level mutation, as libFuzzer's `MutationDispatcher` does them.
    pub(super) fn mutate_bytes(&self, data: &mut Vec<u8>, rng: &mut Rng) {
        let at = rng.below(data.len() + 1);
        match rng.below(10) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next_u64() as u8;
            }
            2 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = *rng.pick(SPECIAL_BYTES).unwrap_or(&0);
            }
            3 => {
                let t = self.token(rng);
                data.splice(at..at, t);
            }
            4 => {
                let t = self.token(rng);
                let end = (at + t.len()).min(data.len());
                data.splice(at..end, t);
            }
            5 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            6 if !data.is_empty() => {
                let from = rng.below(data.len());
                let to = (from + 1 + rng.below(64)).min(data.len());
                let piece = data[from..to].to_vec();
                for _ in 0..=rng.below(3) {
                    let at = rng.below(data.len() + 1);
                    data.splice(at..at, piece.iter().copied());
                }
            }
            7 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            8 => {
                // Splice: this entry's head, another's tail.
                if let Some(other) = rng.pick(&self.corpus) {
                    let from = rng.below(other.len() + 1);
                    data.truncate(at);
                    data.extend_from_slice(&other[from..]);
                }
            }
            _ => replace_number(data, rng),
        }
    }
}

/// Replaces the first run of ASCII digits at or after a random place with an edge number.
fn replace_number(data: &mut Vec<u8>, rng: &mut Rng) {
    let from = rng.below(data.len() + 1);
    let Some(start) = data[from..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| from + i)
    else {
        return;
    };
    let end = data[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |i| start + i);
    let n = rng
        .pick(SPECIAL_NUMBERS)
        .unwrap_or(&"0")
        .as_bytes()
        .to_vec();
    data.splice(start..end, n);
}
