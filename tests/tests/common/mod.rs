//! What more than one test file reads the same way: `template.yaml` as YAML, its CloudFormation
//! tags (`!Ref`, `!If`) left on the values.

// Each test file uses part of this.
#![allow(dead_code)]

use harness::stack::repo_root;
use serde_norway::Value;

pub fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// `(tag, value)` of a tagged value (`!Ref X` is `("Ref", "X")`).
pub fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        _ => None,
    }
}

/// Whether `v` is `!Ref name`.
pub fn is_ref_to(v: &Value, name: &str) -> bool {
    tagged(v).is_some_and(|(tag, value)| tag == "Ref" && value.as_str() == Some(name))
}

/// The value under any tags (`!If [...]` is the list).
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}
