//! One deploy of template.yaml: its parameters, and the template's conditions, rules and
//! values evaluated for them, so that a test checks what a layout would deploy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as J;
use serde_norway::Value;

use super::{get_att_arn, tagged};

/// One deploy's parameters, and the template's conditions evaluated for them.
pub struct Layout<'t> {
    pub t: &'t Value,
    pub params: BTreeMap<String, String>,
}

/// The long form (`Fn::If: [...]`, `Ref: X`) or the short tag, as `(name, argument)`.
fn function_of(v: &Value) -> Option<(String, &Value)> {
    if let Some((tag, inner)) = tagged(v) {
        return Some((tag, inner));
    }
    let Value::Mapping(m) = v else { return None };
    if m.len() != 1 {
        return None;
    }
    let (k, inner) = m.iter().next()?;
    let k = k.as_str()?;
    match k {
        "Ref" | "Condition" => Some((k.to_owned(), inner)),
        _ => k.strip_prefix("Fn::").map(|name| (name.to_owned(), inner)),
    }
}

fn args(v: &Value) -> &[Value] {
    match v {
        Value::Sequence(items) => items,
        other => panic!("arguments are a list: {other:?}"),
    }
}

/// A resolved value as the string CloudFormation would use (a JSON string unquoted).
fn text(v: &J) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

impl<'t> Layout<'t> {
    /// The parameters a deploy must give (those without a default) with a plausible value,
    /// then `given`: a parameter left optional is left to its default.
    pub fn new(t: &'t Value, given: &[(&str, &str)]) -> Self {
        let Value::Mapping(declared) = &t["Parameters"] else {
            panic!("Parameters")
        };
        let mut params = BTreeMap::new();
        for (name, p) in declared {
            let name = name.as_str().unwrap();
            let value = match &p["Default"] {
                Value::Null => required_value(name).to_owned(),
                Value::String(s) => s.clone(),
                other => serde_norway::to_string(other).unwrap().trim().to_owned(),
            };
            params.insert(name.to_owned(), value);
        }
        for (name, value) in given {
            if declared.contains_key(*name) {
                params.insert((*name).to_owned(), (*value).to_owned());
            }
        }
        Self { t, params }
    }

    pub fn condition(&self, name: &str) -> bool {
        let c = &self.t["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    pub fn truth(&self, v: &Value) -> bool {
        let (name, inner) = function_of(v).unwrap_or_else(|| panic!("not a condition: {v:?}"));
        match name.as_str() {
            "Condition" => self.condition(inner.as_str().unwrap()),
            "Equals" => {
                let a = args(inner);
                self.value(&a[0]) == self.value(&a[1])
            }
            "Not" => !self.truth(&args(inner)[0]),
            "And" => args(inner).iter().all(|c| self.truth(c)),
            "Or" => args(inner).iter().any(|c| self.truth(c)),
            // A Rules function: whether the list holds the value.
            "Contains" => {
                let a = args(inner);
                let list = self.value(&a[0]).unwrap_or(J::Array(vec![]));
                let item = self.value(&a[1]);
                list.as_array()
                    .unwrap()
                    .iter()
                    .any(|i| Some(i) == item.as_ref())
            }
            other => panic!("condition function {other}"),
        }
    }

    /// A parameter's value; a list parameter as its items.
    pub fn parameter(&self, name: &str) -> J {
        let value = &self.params[name];
        let kind = self.t["Parameters"][name]["Type"]
            .as_str()
            .unwrap_or("String");
        if kind.starts_with("List<") || kind == "CommaDelimitedList" {
            J::Array(value.split(',').map(|s| J::String(s.into())).collect())
        } else {
            J::String(value.clone())
        }
    }

    /// `"${Name}"`s replaced by `vars`' or the parameters' values; what only AWS knows (a
    /// pseudo parameter, a resource) as `<Name>`.
    fn substitute(&self, template: &str, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').expect("an unclosed ${ in a !Sub");
            let name = &after[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None if self.params.contains_key(name) => {
                    out.push_str(&text(&self.parameter(name)));
                }
                None => out.push_str(&format!("<{name}>")),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `v` as deployed in this layout: `None` where it is `AWS::NoValue`. What only AWS knows
    /// (a resource's id or attribute, a pseudo parameter) stays a `<placeholder>`.
    pub fn value(&self, v: &Value) -> Option<J> {
        if let Some((name, inner)) = function_of(v) {
            return match name.as_str() {
                "Ref" => {
                    let target = inner.as_str().unwrap();
                    if target == "AWS::NoValue" {
                        None
                    } else if self.params.contains_key(target) {
                        Some(self.parameter(target))
                    } else {
                        Some(J::String(format!("<{target}>")))
                    }
                }
                "If" => {
                    let a = args(inner);
                    let chosen = if self.condition(a[0].as_str().unwrap()) {
                        &a[1]
                    } else {
                        &a[2]
                    };
                    self.value(chosen)
                }
                "Equals" | "Not" | "And" | "Or" | "Condition" | "Contains" => {
                    Some(J::Bool(self.truth(v)))
                }
                "Join" => {
                    let a = args(inner);
                    let items = self.value(&a[1]).unwrap_or(J::Array(vec![]));
                    let parts: Vec<String> = items.as_array().unwrap().iter().map(text).collect();
                    Some(J::String(parts.join(a[0].as_str().unwrap())))
                }
                "Split" => {
                    let a = args(inner);
                    let whole = text(&self.value(&a[1]).unwrap());
                    Some(J::Array(
                        whole
                            .split(a[0].as_str().unwrap())
                            .map(|s| J::String(s.into()))
                            .collect(),
                    ))
                }
                // Past the list's end CloudFormation refuses the template: `None` here.
                "Select" => {
                    let a = args(inner);
                    let index = text(&self.value(&a[0]).unwrap()).parse::<usize>().ok()?;
                    let list = self.value(&a[1])?;
                    list.as_array()?.get(index).cloned()
                }
                "Sub" => {
                    let (template, vars) = match inner {
                        Value::String(s) => (s.as_str(), BTreeMap::new()),
                        Value::Sequence(a) => {
                            let vars = match &a[1] {
                                Value::Mapping(m) => m
                                    .iter()
                                    .map(|(k, v)| {
                                        let v = self.value(v).map(|v| text(&v));
                                        (k.as_str().unwrap().to_owned(), v.unwrap_or_default())
                                    })
                                    .collect(),
                                other => panic!("!Sub variables: {other:?}"),
                            };
                            (a[0].as_str().unwrap(), vars)
                        }
                        other => panic!("!Sub {other:?}"),
                    };
                    Some(J::String(self.substitute(template, &vars)))
                }
                "GetAtt" => Some(J::String(format!(
                    "<{}>",
                    get_att_arn(v).unwrap_or_default()
                ))),
                other => Some(J::String(format!("<{other}>"))),
            };
        }
        match v {
            Value::Mapping(m) => Some(J::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), self.value(v)?)))
                    .collect(),
            )),
            Value::Sequence(items) => Some(J::Array(
                items.iter().filter_map(|i| self.value(i)).collect(),
            )),
            other => Some(serde_json::to_value(other).unwrap()),
        }
    }

    /// Whether the template's Rules let this layout deploy; otherwise the failed assertions.
    pub fn refusals(&self) -> Vec<String> {
        let Value::Mapping(rules) = &self.t["Rules"] else {
            return Vec::new();
        };
        let mut refused = Vec::new();
        for (name, rule) in rules {
            let applies = rule.get("RuleCondition").is_none_or(|c| self.truth(c));
            if !applies {
                continue;
            }
            for assertion in args(&rule["Assertions"]) {
                if !self.truth(&assertion["Assert"]) {
                    refused.push(format!(
                        "{}: {:?}",
                        name.as_str().unwrap(),
                        assertion["AssertDescription"]
                    ));
                }
            }
        }
        refused
    }

    /// Each resource this layout deploys, by logical id.
    pub fn resources(&self) -> Vec<(&'t str, &'t Value)> {
        let Value::Mapping(resources) = &self.t["Resources"] else {
            panic!("Resources")
        };
        resources
            .iter()
            .filter(|(_, r)| r["Condition"].as_str().is_none_or(|c| self.condition(c)))
            .map(|(name, r)| (name.as_str().unwrap(), r))
            .collect()
    }

    /// Each function this layout deploys, by logical id.
    pub fn functions(&self) -> Vec<(&'t str, &'t Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .collect()
    }

    /// A function's environment as deployed: the Globals' variables, each overridden by the
    /// function's own (SAM merges them before CloudFormation resolves either), resolved.
    pub fn environment(&self, function: &Value) -> BTreeMap<String, Option<J>> {
        let mut merged: BTreeMap<String, &Value> = BTreeMap::new();
        for vars in [
            &self.t["Globals"]["Function"]["Environment"]["Variables"],
            &function["Properties"]["Environment"]["Variables"],
        ] {
            if let Value::Mapping(m) = vars {
                for (k, v) in m {
                    merged.insert(k.as_str().unwrap().to_owned(), v);
                }
            }
        }
        merged
            .into_iter()
            .map(|(k, v)| (k, self.value(v)))
            .collect()
    }
}

/// A plausible value for each parameter a deploy must give.
fn required_value(name: &str) -> &'static str {
    match name {
        "DbSecretArn" => {
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0a1b2c3d-AbCdEf"
        }
        "SubnetIds" => "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
        "FunctionSecurityGroupId" => "sg-0aaaaaaaaaaaaaaa1",
        "DatabaseSecurityGroupId" => "sg-0bbbbbbbbbbbbbbb2",
        "DbHost" => "app.abcdefghijkl.eu-west-1.rds.amazonaws.com",
        "DbName" => "app",
        "IpChangeCallerArns" => "",
        _ => "given",
    }
}

/// The parameters a layout must give: those without a default, and each optional one it
/// gives whose emptying the Rules refuse.
pub fn required(l: &Layout, given: &[(&str, &str)]) -> BTreeSet<String> {
    let Value::Mapping(declared) = &l.t["Parameters"] else {
        panic!("Parameters")
    };
    let mut required = BTreeSet::new();
    for (name, p) in declared {
        let name = name.as_str().unwrap();
        if p.get("Default").is_none() {
            required.insert(name.to_owned());
            continue;
        }
        if l.params[name].is_empty() || !p["Default"].as_str().is_some_and(str::is_empty) {
            continue;
        }
        let mut emptied: Vec<(&str, &str)> = given.to_vec();
        emptied.retain(|(n, _)| *n != name);
        emptied.push((name, ""));
        if !Layout::new(l.t, &emptied).refusals().is_empty() {
            required.insert(name.to_owned());
        }
    }
    required
}

/// The name a reference points at: `X` of `X.Arn`, `X.Version`.
pub fn target(name: &str) -> String {
    name.split('.').next().unwrap_or(name).to_owned()
}

/// Every resource or parameter `v` names as deployed in this layout (only the `!If` branch
/// taken), by `!Ref`, `!GetAtt`, `${...}` in a `!Sub`, or `DependsOn`.
pub fn references(l: &Layout, v: &Value, out: &mut BTreeSet<String>) {
    if let Some((tag, inner)) = tagged(v) {
        match tag.as_str() {
            "If" => {
                let Value::Sequence(a) = inner else {
                    panic!("!If {inner:?}")
                };
                let taken = if l.condition(a[0].as_str().unwrap()) {
                    &a[1]
                } else {
                    &a[2]
                };
                references(l, taken, out);
            }
            "Ref" => {
                out.insert(target(inner.as_str().unwrap()));
            }
            "GetAtt" => match inner {
                Value::String(s) => {
                    out.insert(target(s));
                }
                Value::Sequence(parts) => {
                    out.insert(target(parts[0].as_str().unwrap()));
                }
                other => panic!("!GetAtt {other:?}"),
            },
            "Sub" => {
                let (text, vars) = match inner {
                    Value::String(s) => (s.as_str(), None),
                    Value::Sequence(a) => (a[0].as_str().unwrap(), Some(&a[1])),
                    other => panic!("!Sub {other:?}"),
                };
                let local: BTreeSet<String> = match vars {
                    Some(Value::Mapping(m)) => {
                        for value in m.values() {
                            references(l, value, out);
                        }
                        m.keys()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    }
                    _ => BTreeSet::new(),
                };
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    let after = &rest[start + 2..];
                    let end = after.find('}').unwrap();
                    let name = &after[..end];
                    if !name.starts_with('!') && !local.contains(name) {
                        out.insert(target(name));
                    }
                    rest = &after[end + 1..];
                }
            }
            _ => references(l, inner, out),
        }
        return;
    }
    match v {
        Value::Mapping(m) => {
            for (k, value) in m {
                if k.as_str() == Some("DependsOn") {
                    for name in super::strings(value) {
                        out.insert(name);
                    }
                } else {
                    references(l, value, out);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| references(l, i, out)),
        _ => {}
    }
}
