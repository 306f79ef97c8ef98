//! What more than one test file reads the same way: `template.yaml` as YAML, its CloudFormation
//! tags (`!Ref`, `!If`) left on the values, and its functions' IAM ([`iam`]).

// Each test file uses part of this.
#![allow(dead_code)]

use std::{collections::BTreeMap, path::PathBuf};

use harness::stack::repo_root;
use serde_norway::Value;

pub mod iam;
pub mod layout;

/// The python3 of the project's virtual environment (`DB_SYNC_VENV`, else `.venv`, as
/// scripts/python-env makes it) when there is one, else `python3` from PATH.
pub fn project_python() -> PathBuf {
    let venv = std::env::var_os("DB_SYNC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let python = venv.join("bin/python3");
    if python.exists() {
        python
    } else {
        PathBuf::from("python3")
    }
}

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

/// The strings of `v` under any tags: a string, or a list's items (anything else as its
/// debug form, so that a comparison shows it).
pub fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        other => vec![format!("{other:?}")],
    }
}

/// Each resource of type `kind` in the template, by logical id.
pub fn resources_of_type<'t>(t: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("no Resources")
    };
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap(), r))
        .collect()
}

/// `!GetAtt NAME.Arn` (either spelling) as `NAME`.
pub fn get_att_arn(v: &Value) -> Option<String> {
    let (tag, value) = tagged(v)?;
    if tag != "GetAtt" {
        return None;
    }
    match value {
        Value::String(s) => s.strip_suffix(".Arn").map(str::to_owned),
        Value::Sequence(parts) if parts.len() == 2 && parts[1].as_str() == Some("Arn") => {
            parts[0].as_str().map(str::to_owned)
        }
        _ => None,
    }
}

/// A template value as JSON, with `!Ref` of a parameter replaced by `params`' value.
pub fn resolved(v: &Value, params: &BTreeMap<&str, &str>) -> serde_json::Value {
    if let Some((tag, inner)) = tagged(v) {
        let name = inner.as_str().unwrap_or_default();
        assert_eq!(tag, "Ref", "{v:?}");
        return serde_json::Value::String(params[name].to_owned());
    }
    match v {
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), resolved(v, params)))
                .collect(),
        ),
        Value::Sequence(items) => {
            serde_json::Value::Array(items.iter().map(|i| resolved(i, params)).collect())
        }
        other => serde_json::to_value(other).unwrap(),
    }
}
