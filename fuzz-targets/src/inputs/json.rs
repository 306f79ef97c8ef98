//! Changes made to a corpus entry as JSON: a value anywhere replaced by arbitrary JSON or by a
//! piece of another entry, a key dropped or added, a type swapped, a node nested deeper.

use serde_json::{Map, Value};

use super::{Generator, Rng, bytes::SPECIAL_NUMBERS};

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

impl Generator {
    pub(super) fn mutate_json(&self, rng: &mut Rng) -> Vec<u8> {
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
pub(super) fn collect_tokens(v: &Value, out: &mut Vec<String>) {
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
