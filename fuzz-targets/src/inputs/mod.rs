//! Inputs made from a corpus without coverage feedback (stable Rust has no libFuzzer): each
//! one is a corpus entry changed by a few of the mutations libFuzzer tries first (bit flips,
//! special bytes, inserted or overwritten tokens, deleted, copied and spliced ranges,
//! replaced numbers), a JSON entry changed as JSON (a value anywhere replaced by arbitrary
//! JSON or by a piece of another entry, a key dropped or added, a type swapped), an address
//! made from the networks the validation tells apart, or tokens glued together. The same
//! seed gives the same inputs.
//!
//! [`Generator`] picks among the kinds of input; each kind is made in its own module:
//! `bytes` (libFuzzer's byte mutations), `json` (changes made as JSON) and `address`
//! (addresses from the networks the validation tells apart), all from the numbers of [`Rng`].

mod address;
mod bytes;
mod json;
mod rng;

use serde_json::Value;

pub use rng::Rng;

use self::{
    address::address,
    bytes::{SPECIAL_BYTES, SPECIAL_NUMBERS},
    json::collect_tokens,
};
use crate::Shape;

/// The longest input made, as libFuzzer's default `-max_len` (or the longest corpus entry).
pub const MAX_LEN: usize = 4096;

/// Makes inputs for one target from its corpus.
#[derive(Debug)]
pub struct Generator {
    shape: Shape,
    corpus: Vec<Vec<u8>>,
    /// The corpus entries that parse as JSON.
    documents: Vec<Value>,
    /// The target's tokens, and every key, string and number found in the JSON entries.
    tokens: Vec<Vec<u8>>,
    max_len: usize,
}

impl Generator {
    pub fn new(shape: Shape, corpus: &[Vec<u8>], tokens: &[&str]) -> Self {
        let documents: Vec<Value> = corpus
            .iter()
            .filter_map(|c| serde_json::from_slice(c).ok())
            .collect();
        let mut found = Vec::new();
        for d in &documents {
            collect_tokens(d, &mut found);
        }
        let mut tokens: Vec<Vec<u8>> = tokens
            .iter()
            .map(|t| t.as_bytes().to_vec())
            .chain(found.into_iter().map(String::into_bytes))
            .collect();
        tokens.sort();
        tokens.dedup();
        let max_len = corpus.iter().map(Vec::len).max().unwrap_or(0).max(MAX_LEN);
        Self {
            shape,
            corpus: corpus.to_vec(),
            documents,
            tokens,
            max_len,
        }
    }

    /// One new input.
    pub fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        let mut out = match (rng.below(10), self.shape) {
            (0..=3, _) => {
                let mut data = rng.pick(&self.corpus).cloned().unwrap_or_default();
                for _ in 0..=rng.below(4) {
                    self.mutate_bytes(&mut data, rng);
                }
                data
            }
            (4..=8, Shape::Json) if !self.documents.is_empty() => self.mutate_json(rng),
            (4..=7, Shape::Address) => address(rng).into_bytes(),
            _ => self.glue_tokens(rng),
        };
        out.truncate(self.max_len);
        out
    }

    fn token(&self, rng: &mut Rng) -> Vec<u8> {
        rng.pick(&self.tokens).cloned().unwrap_or_default()
    }

    fn glue_tokens(&self, rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..=rng.below(8) {
            match rng.below(4) {
                0 => out.extend_from_slice(rng.pick(SPECIAL_NUMBERS).unwrap_or(&"0").as_bytes()),
                1 => out.push(*rng.pick(SPECIAL_BYTES).unwrap_or(&b'0')),
                _ => out.extend(self.token(rng)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let corpus = vec![br#"{"owner":"andrew","ip":"34.201.17.5"}"#.to_vec()];
        let g = Generator::new(Shape::Json, &corpus, &["\"detail\""]);
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200).map(|_| g.generate(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn inputs_stay_within_the_length_limit_and_vary() {
        let corpus = vec![b"34.201.17.5".to_vec(), b"2600:1f18::7/128".to_vec()];
        let g = Generator::new(Shape::Address, &corpus, crate::ip::TOKENS);
        let mut rng = Rng::new(1);
        let inputs: Vec<Vec<u8>> = (0..5000).map(|_| g.generate(&mut rng)).collect();
        assert!(inputs.iter().all(|i| i.len() <= MAX_LEN));
        let distinct: std::collections::HashSet<_> = inputs.iter().collect();
        assert!(distinct.len() > 2500, "{} distinct of 5000", distinct.len());
        // Some of them are admitted hosts: the generator reaches past the first refusal.
        let admitted = inputs
            .iter()
            .filter(|i| {
                std::str::from_utf8(i).is_ok_and(|s| ingress::ip::host_cidr(s, false).is_ok())
            })
            .count();
        assert!(admitted > 100, "{admitted} admitted of 5000");
    }

    #[test]
    fn json_inputs_mostly_stay_json() {
        let corpus =
            vec![br#"{"detail-type":"Scheduled Event","detail":{"mode":"report"}}"#.to_vec()];
        let g = Generator::new(Shape::Json, &corpus, &[]);
        let mut rng = Rng::new(3);
        let parsed = (0..2000)
            .filter(|_| serde_json::from_slice::<Value>(&g.generate(&mut rng)).is_ok())
            .count();
        assert!(parsed > 500, "{parsed} of 2000 parse as JSON");
    }
}
