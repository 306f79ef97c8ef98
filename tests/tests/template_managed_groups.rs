//! The managed groups as the template deploys them: `DatabaseSecurityGroupId` and the
//! `AdditionalDatabaseSecurityGroupIds` reach sg-ip-update, its bus twin and drift-check, and
//! each one's EC2 write grant names exactly those groups. The template's values are evaluated
//! here for given parameters (the intrinsic functions these parts use: `Ref`, `Sub`, `Join`,
//! `Split`, `Select`, `If` and the conditions), as CloudFormation would.

use std::collections::BTreeMap;

use serde_norway::Value;

mod common;
use common::{tagged, template};

/// A value as CloudFormation would resolve it: a string, a list, a map, or nothing
/// (`AWS::NoValue`).
#[derive(Debug, Clone, PartialEq)]
enum V {
    S(String),
    L(Vec<V>),
    M(BTreeMap<String, V>),
    None,
}

impl V {
    fn s(&self) -> String {
        match self {
            V::S(s) => s.clone(),
            other => panic!("expected a string, got {other:?}"),
        }
    }

    fn strings(&self) -> Vec<String> {
        match self {
            V::L(items) => items.iter().map(V::s).collect(),
            V::S(s) => vec![s.clone()],
            other => panic!("expected strings, got {other:?}"),
        }
    }
}

struct Eval<'t> {
    t: &'t Value,
    params: BTreeMap<String, V>,
}

impl<'t> Eval<'t> {
    /// The template's parameters at their defaults, with `given` over them.
    fn new(t: &'t Value, given: &[(&str, &str)]) -> Self {
        let mut params = BTreeMap::new();
        let Value::Mapping(declared) = &t["Parameters"] else {
            panic!("Parameters")
        };
        for (name, p) in declared {
            let name = name.as_str().unwrap();
            let value = given
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| match &p["Default"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            let v = match p["Type"].as_str() {
                Some(ty) if ty == "CommaDelimitedList" || ty.starts_with("List<") => {
                    V::L(value.split(',').map(|s| V::S(s.to_owned())).collect())
                }
                _ => V::S(value),
            };
            params.insert(name.to_owned(), v);
        }
        for (k, v) in [
            ("AWS::Partition", "aws"),
            ("AWS::Region", "us-east-1"),
            ("AWS::AccountId", "123456789012"),
            ("AWS::StackName", "stack"),
        ] {
            params.insert(k.to_owned(), V::S(v.to_owned()));
        }
        Eval { t, params }
    }

    fn condition(&self, name: &str) -> bool {
        match self.eval(&self.t["Conditions"][name]) {
            V::S(b) => b == "true",
            other => panic!("condition {name}: {other:?}"),
        }
    }

    fn reference(&self, name: &str) -> V {
        if name == "AWS::NoValue" {
            return V::None;
        }
        self.params
            .get(name)
            .cloned()
            .unwrap_or_else(|| V::S(format!("ref:{name}")))
    }

    fn sub(&self, text: &str, vars: &BTreeMap<String, V>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            let value = vars
                .get(name)
                .cloned()
                .unwrap_or_else(|| self.reference(name));
            out.push_str(&value.s());
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn eval(&self, v: &Value) -> V {
        if let Some((tag, inner)) = tagged(v) {
            let args = |i: usize| &inner.as_sequence().unwrap()[i];
            let bool_v = |b: bool| V::S(b.to_string());
            return match tag.as_str() {
                "Ref" => self.reference(inner.as_str().unwrap()),
                "Condition" => bool_v(self.condition(inner.as_str().unwrap())),
                "GetAtt" => V::S(format!("getatt:{inner:?}")),
                "Sub" => match inner {
                    Value::String(s) => V::S(self.sub(s, &BTreeMap::new())),
                    _ => {
                        let vars = match self.eval(args(1)) {
                            V::M(m) => m,
                            other => panic!("Sub variables: {other:?}"),
                        };
                        V::S(self.sub(args(0).as_str().unwrap(), &vars))
                    }
                },
                "Join" => {
                    let parts = self.eval(args(1)).strings();
                    V::S(parts.join(args(0).as_str().unwrap()))
                }
                "Split" => {
                    let text = self.eval(args(1)).s();
                    let sep = args(0).as_str().unwrap();
                    V::L(text.split(sep).map(|s| V::S(s.to_owned())).collect())
                }
                "Select" => {
                    let i: usize = match self.eval(args(0)) {
                        V::S(s) => s.parse().unwrap(),
                        other => panic!("Select index {other:?}"),
                    };
                    match self.eval(args(1)) {
                        V::L(items) => items
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| panic!("Select {i}: out of range")),
                        other => panic!("Select from {other:?}"),
                    }
                }
                "If" => {
                    if self.condition(args(0).as_str().unwrap()) {
                        self.eval(args(1))
                    } else {
                        self.eval(args(2))
                    }
                }
                "Equals" => bool_v(self.eval(args(0)) == self.eval(args(1))),
                "Not" => bool_v(self.eval(args(0)) != V::S("true".into())),
                "And" | "Or" => {
                    let each = inner
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|c| self.eval(c) == V::S("true".into()));
                    bool_v(if tag == "And" {
                        each.collect::<Vec<_>>().into_iter().all(|b| b)
                    } else {
                        each.collect::<Vec<_>>().into_iter().any(|b| b)
                    })
                }
                other => panic!("intrinsic {other} is not evaluated here"),
            };
        }
        match v {
            Value::String(s) => V::S(s.clone()),
            Value::Number(n) => V::S(n.to_string()),
            Value::Bool(b) => V::S(b.to_string()),
            Value::Sequence(items) => V::L(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .filter(|i| *i != V::None)
                    .collect(),
            ),
            Value::Mapping(m) => V::M(
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_owned(), self.eval(v)))
                    .filter(|(_, v)| *v != V::None)
                    .collect(),
            ),
            other => panic!("{other:?}"),
        }
    }
}

const FUNCTIONS: [&str; 3] = [
    "SgIpUpdateFunction",
    "SgIpUpdateBusFunction",
    "DriftCheckFunction",
];

/// Per function: the security groups its EC2 write statements name, and its environment.
fn deployed(t: &Value, given: &[(&str, &str)]) -> Vec<(String, Vec<String>, BTreeMap<String, V>)> {
    let e = Eval::new(t, given);
    FUNCTIONS
        .iter()
        .map(|name| {
            let props = e.eval(&t["Resources"][*name]["Properties"]);
            let V::M(props) = props else { panic!() };
            let V::L(policies) = &props["Policies"] else {
                panic!("{name}: Policies")
            };
            let mut groups = Vec::new();
            for p in policies {
                let V::M(p) = p else { continue };
                let Some(V::L(statements)) = p.get("Statement") else {
                    continue;
                };
                for s in statements {
                    let V::M(s) = s else { panic!() };
                    if !s["Action"]
                        .strings()
                        .contains(&"ec2:AuthorizeSecurityGroupIngress".to_owned())
                    {
                        continue;
                    }
                    for r in s["Resource"].strings() {
                        if let Some(g) =
                            r.strip_prefix("arn:aws:ec2:us-east-1:123456789012:security-group/")
                        {
                            groups.push(g.to_owned());
                        }
                    }
                }
            }
            let V::M(env) = &props["Environment"] else {
                panic!()
            };
            let V::M(vars) = &env["Variables"] else {
                panic!()
            };
            ((*name).to_owned(), groups, vars.clone())
        })
        .collect()
}

fn listed(v: Option<&V>) -> Vec<String> {
    v.map(V::s)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The groups each function manages by its environment, and the groups its grant names, are
/// both exactly `groups`.
fn check(t: &Value, additional: &str, groups: &[&str]) -> Vec<String> {
    let given = [
        ("DeployDeveloperAccess", "true"),
        ("DeployDriftCheck", "true"),
        ("DatabaseSecurityGroupId", "sg-0aaaaaaa"),
        ("AdditionalDatabaseSecurityGroupIds", additional),
    ];
    let mut wrong = Vec::new();
    for (name, granted, env) in deployed(t, &given) {
        if granted != groups {
            wrong.push(format!("{name} may change {granted:?}, not {groups:?}"));
        }
        let managed = if name == "DriftCheckFunction" {
            listed(env.get("SECURITY_GROUP_IDS"))
        } else {
            let mut g = listed(env.get("SECURITY_GROUP_ID"));
            g.extend(listed(env.get("ADDITIONAL_SECURITY_GROUP_IDS")));
            g
        };
        if managed != groups {
            wrong.push(format!("{name} manages {managed:?}, not {groups:?}"));
        }
        if env.get("RULES_PER_SECURITY_GROUP") != Some(&V::S("60".into())) {
            wrong.push(format!("{name}: RULES_PER_SECURITY_GROUP"));
        }
    }
    wrong
}

#[test]
fn every_managed_group_reaches_the_functions_and_their_grants_name_exactly_those() {
    let t = template();
    for (additional, groups) in [
        ("", &["sg-0aaaaaaa"][..]),
        ("sg-0bbbbbbb", &["sg-0aaaaaaa", "sg-0bbbbbbb"]),
        (
            "sg-0bbbbbbb,sg-0ccccccc,sg-0ddddddd,sg-0eeeeeee",
            &[
                "sg-0aaaaaaa",
                "sg-0bbbbbbb",
                "sg-0ccccccc",
                "sg-0ddddddd",
                "sg-0eeeeeee",
            ],
        ),
    ] {
        assert_eq!(
            check(&t, additional, groups),
            Vec::<String>::new(),
            "{additional:?}"
        );
    }
}

#[test]
fn the_check_fires_on_a_function_whose_grant_misses_a_group() {
    let mut t = template();
    // Planted: the bus function's grant names the first group only.
    let text = serde_norway::to_string(&t["Resources"]["SgIpUpdateBusFunction"]).unwrap();
    let planted = text.replace("HasAdditionalGroup2", "HasNoSuchGroup");
    t["Resources"]["SgIpUpdateBusFunction"] = serde_norway::from_str(&planted).unwrap();
    t["Conditions"]["HasNoSuchGroup"] = serde_norway::from_str("!Equals [\"a\", \"b\"]").unwrap();
    let wrong = check(
        &t,
        "sg-0bbbbbbb,sg-0ccccccc",
        &["sg-0aaaaaaa", "sg-0bbbbbbb", "sg-0ccccccc"],
    );
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].starts_with("SgIpUpdateBusFunction may change"),
        "{wrong:?}"
    );
}

#[test]
fn the_capacity_alarm_watches_the_groups_use_as_a_whole_at_80_percent() {
    let t = template();
    let alarm = &t["Resources"]["ManagedGroupsCapacityAlarm"]["Properties"];
    assert_eq!(
        alarm["MetricName"].as_str(),
        Some("ManagedRulesUsedPercent")
    );
    assert_eq!(alarm["Threshold"].as_u64(), Some(80));
    assert_eq!(
        alarm["ComparisonOperator"].as_str(),
        Some("GreaterThanOrEqualToThreshold")
    );
    let e = Eval::new(&t, &[]);
    let namespace = e.eval(&alarm["Namespace"]).s();
    let drift_env = e.eval(&t["Resources"]["DriftCheckFunction"]["Properties"]["Environment"]);
    let V::M(env) = drift_env else { panic!() };
    let V::M(vars) = &env["Variables"] else {
        panic!()
    };
    assert_eq!(vars["METRICS_NAMESPACE"].s(), namespace);
}
