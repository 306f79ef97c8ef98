//! Inputs made from a corpus without coverage feedback (stable Rust has no libFuzzer): each
//! one is a corpus entry changed by a few of the mutations libFuzzer tries first (bit flips,
//! special bytes, inserted or overwritten tokens, deleted, copied and spliced ranges,
//! replaced numbers), a JSON entry changed as JSON (a value anywhere replaced by arbitrary
//! JSON or by a piece of another entry, a key dropped or added, a type swapped), an address
//! made from the networks the validation tells apart, or tokens glued together. The same
//! seed gives the same inputs.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use crate::Shape;

/// The longest input made, as libFuzzer's default `-max_len` (or the longest corpus entry).
pub const MAX_LEN: usize = 4096;

/// A small, fast, seedable generator (SplitMix64): the inputs need to be varied and
/// reproducible, not unpredictable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Bytes that often sit on a parser's boundaries.
const SPECIAL_BYTES: &[u8] = b"\0\x7f\x80\xff\"\\{}[]:,/.% 09-+eE\n\t";

/// Numbers at the edges of the integer and float types.
const SPECIAL_NUMBERS: &[&str] = &[
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

/// Strings that are awkward to store, compare or print.
const SPECIAL_STRINGS: &[&str] = &[
    "",
    " ",
    "\0",
    "a\0b",
    "\u{feff}",
    "\u{202e}",
    "🦀",
    "é",
    "\u{ffff}",
    "\r\n",
    "'; DROP TABLE users; --",
    "<script>",
    "%s%n",
    "../../etc/passwd",
];

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

    /// One byte-level mutation, as libFuzzer's `MutationDispatcher` does them.
    fn mutate_bytes(&self, data: &mut Vec<u8>, rng: &mut Rng) {
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

    fn mutate_json(&self, rng: &mut Rng) -> Vec<u8> {
        let mut doc = rng.pick(&self.documents).cloned().unwrap_or(Value::Null);
        // Mostly one change, so that most inputs are one step from a valid event.
        let changes = if rng.one_in(2) { 1 } else { 2 + rng.below(3) };
        for _ in 0..changes {
            let paths = node_paths(&doc);
            let path = rng.pick(&paths).cloned().unwrap_or_default();
            let replacement = match doc.pointer(&path) {
                Some(node) => self.changed_node(node, rng),
                None => continue,
            };
            if let Some(slot) = doc.pointer_mut(&path) {
                *slot = replacement;
            }
        }
        let text = if rng.one_in(4) {
            serde_json::to_vec_pretty(&doc)
        } else {
            serde_json::to_vec(&doc)
        };
        let mut out = text.unwrap_or_default();
        if rng.one_in(8) {
            self.mutate_bytes(&mut out, rng);
        }
        out
    }

    /// `node`, changed in one way.
    fn changed_node(&self, node: &Value, rng: &mut Rng) -> Value {
        match (rng.below(7), node) {
            (0, _) => self.arbitrary_json(rng, 3),
            (1, _) => {
                // A piece of another document, where this one had something else.
                let other = rng.pick(&self.documents).cloned().unwrap_or(Value::Null);
                let paths = node_paths(&other);
                let path = rng.pick(&paths).cloned().unwrap_or_default();
                other.pointer(&path).cloned().unwrap_or(Value::Null)
            }
            (2, Value::Object(o)) if !o.is_empty() => {
                let mut o = o.clone();
                let key = o
                    .keys()
                    .nth(rng.below(o.len()))
                    .cloned()
                    .unwrap_or_default();
                o.remove(&key);
                Value::Object(o)
            }
            (3, Value::Object(o)) => {
                let mut o = o.clone();
                o.insert(self.string(rng), self.arbitrary_json(rng, 2));
                Value::Object(o)
            }
            (4, Value::String(s)) => {
                let mut bytes = s.clone().into_bytes();
                for _ in 0..=rng.below(3) {
                    self.mutate_bytes(&mut bytes, rng);
                }
                Value::String(String::from_utf8_lossy(&bytes).into_owned())
            }
            (4, Value::Array(a)) if !a.is_empty() => {
                // The same element many times: a list where one was expected.
                let item = a[rng.below(a.len())].clone();
                Value::Array(vec![item; 1 + rng.below(64)])
            }
            (5, v) => swapped_type(v, rng),
            (_, v) => {
                // Nested one level deeper, under an array or an object.
                if rng.one_in(2) {
                    Value::Array(vec![v.clone()])
                } else {
                    let mut o = Map::new();
                    o.insert(self.string(rng), v.clone());
                    Value::Object(o)
                }
            }
        }
    }

    fn string(&self, rng: &mut Rng) -> String {
        match rng.below(3) {
            0 => rng.pick(SPECIAL_STRINGS).unwrap_or(&"").to_string(),
            1 => {
                let n = rng.below(80);
                (0..n)
                    .map(|_| match rng.below(4) {
                        0 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'),
                        _ => (b' ' + rng.below(95) as u8) as char,
                    })
                    .collect()
            }
            _ => {
                // A token, without the quotes it has as a JSON string.
                let t = self.token(rng);
                let t = String::from_utf8_lossy(&t).into_owned();
                match serde_json::from_str::<String>(&t) {
                    Ok(s) => s,
                    Err(_) => t,
                }
            }
        }
    }

    fn arbitrary_json(&self, rng: &mut Rng, depth: usize) -> Value {
        let leaf = depth == 0 || rng.one_in(2);
        match (leaf, rng.below(6)) {
            (true, 0) => Value::Null,
            (true, 1) => Value::Bool(rng.one_in(2)),
            (true, 2) => rng
                .pick(SPECIAL_NUMBERS)
                .and_then(|n| serde_json::from_str(n).ok())
                .unwrap_or(Value::Null),
            (true, 3) => Value::from(rng.next_u64() as i64),
            (true, _) => Value::String(self.string(rng)),
            (false, 0..=2) => Value::Array(
                (0..rng.below(5))
                    .map(|_| self.arbitrary_json(rng, depth - 1))
                    .collect(),
            ),
            (false, _) => Value::Object(
                (0..rng.below(5))
                    .map(|_| (self.string(rng), self.arbitrary_json(rng, depth - 1)))
                    .collect(),
            ),
        }
    }
}

/// Every key, string and number in `v`, as JSON text, for the dictionary.
fn collect_tokens(v: &Value, out: &mut Vec<String>) {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match v {
        Value::String(s) => out.push(quoted(s)),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| collect_tokens(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.push(quoted(k));
                collect_tokens(x, out);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// JSON pointers to every node of `v`, the root (`""`) first.
fn node_paths(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out.reverse();
    out
}

/// The same content under another JSON type.
fn swapped_type(v: &Value, rng: &mut Rng) -> Value {
    match v {
        Value::String(s) => match rng.below(3) {
            0 => serde_json::from_str(s).unwrap_or(Value::Null),
            1 => Value::Array(vec![Value::String(s.clone())]),
            _ => Value::Bool(true),
        },
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(a) => Value::Object(
            a.iter()
                .enumerate()
                .map(|(i, x)| (i.to_string(), x.clone()))
                .collect(),
        ),
        Value::Object(o) => Value::Array(o.values().cloned().collect()),
        Value::Null => Value::String(String::new()),
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

/// The networks `ingress::ip` tells apart (and some public ones), as base and prefix length.
const V4_NETS: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
    ([255, 255, 255, 255], 32),
    ([34, 201, 17, 5], 32),
    ([8, 8, 8, 8], 24),
    ([52, 0, 0, 0], 8),
    ([0, 0, 0, 0], 0),
];

const V6_NETS: &[(&str, u32)] = &[
    ("::", 128),
    ("::1", 128),
    ("::", 96),
    ("::ffff:0:0", 96),
    ("64:ff9b::", 96),
    ("100::", 64),
    ("2001::", 32),
    ("2001::", 23),
    ("2001:db8::", 32),
    ("2002::", 16),
    ("2600:1f18::", 32),
    ("2000::", 3),
    ("3fff::", 20),
    ("fc00::", 7),
    ("fe80::", 10),
    ("fec0::", 10),
    ("ff00::", 8),
    ("::", 0),
];

/// An address in one of the networks above, written canonically or in a variant spelling,
/// sometimes with a prefix, a zone or blanks.
fn address(rng: &mut Rng) -> String {
    let mut text = if rng.one_in(2) {
        let (net, len) = *rng.pick(V4_NETS).unwrap_or(&([0, 0, 0, 0], 0));
        let host_bits = if len == 0 {
            u32::MAX
        } else {
            u32::MAX.checked_shr(len).unwrap_or(0)
        };
        let a = Ipv4Addr::from(
            (u32::from(Ipv4Addr::from(net)) & !host_bits) | (rng.next_u64() as u32 & host_bits),
        );
        if rng.one_in(8) {
            // Leading zeros, or an octet out of range.
            let o = a.octets();
            let i = rng.below(4);
            let mut parts: Vec<String> = o.iter().map(u8::to_string).collect();
            parts[i] = if rng.one_in(2) {
                format!("0{}", o[i])
            } else {
                (256 + rng.below(800)).to_string()
            };
            parts.join(".")
        } else {
            a.to_string()
        }
    } else {
        let (net, len) = *rng.pick(V6_NETS).unwrap_or(&("::", 0));
        let base = u128::from(net.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED));
        let host_bits = if len == 0 {
            u128::MAX
        } else {
            u128::MAX.checked_shr(len).unwrap_or(0)
        };
        let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        let a = Ipv6Addr::from((base & !host_bits) | (random & host_bits));
        match rng.below(6) {
            0 => a
                .segments()
                .iter()
                .map(|s| format!("{s:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
            1 => a.to_string().to_uppercase(),
            2 => {
                // The last 32 bits written as IPv4.
                let s = a.segments();
                let tail = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
                let head: Vec<String> = s[..6].iter().map(|x| format!("{x:x}")).collect();
                format!("{}:{tail}", head.join(":"))
            }
            _ => a.to_string(),
        }
    };
    match rng.below(8) {
        0 => text.push_str(&format!("/{}", rng.below(140))),
        1 => text.push_str(if text.contains(':') { "/128" } else { "/32" }),
        2 if text.contains(':') => text.push_str("%eth0"),
        3 => text.insert(0, ' '),
        _ => {}
    }
    text
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
