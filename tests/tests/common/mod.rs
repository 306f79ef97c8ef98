//! What more than one test file reads the same way: `template.yaml` as YAML, its CloudFormation
//! tags (`!Ref`, `!If`) left on the values.

use harness::stack::repo_root;
use serde_norway::Value;

pub fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// The value under any tags (`!If [...]` is the list).
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}
