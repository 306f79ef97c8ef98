//! template.yaml's events and what watches them: the CloudTrail rule matching only successful
//! changes to the managed group, bus events kept off the Function URL's executions, dead-letter
//! queues admitting only this stack's rules, an alarm on every failures queue and synchronous
//! function, the drift alarm on drift-check's namespace, pre-sign-up's alarms on its own, the
//! optional trail, and the dashboard.

use std::collections::{BTreeMap, BTreeSet};

use harness::stack::repo_root;
use serde_norway::Value;

mod common;
use common::{get_att_arn, resolved, resources_of_type, strings, tagged, template, untag};

/// EventBridge matching, for the operators the template uses: exact values, `exists` and
/// `$or`.
fn matches(pattern: &serde_json::Value, event: &serde_json::Value) -> bool {
    let serde_json::Value::Object(fields) = pattern else {
        panic!("a pattern is an object: {pattern}")
    };
    fields.iter().all(|(key, p)| {
        if key == "$or" {
            return p.as_array().unwrap().iter().any(|alt| matches(alt, event));
        }
        let value = event.get(key);
        match p {
            serde_json::Value::Object(_) => value.is_some_and(|v| v.is_object() && matches(p, v)),
            serde_json::Value::Array(allowed) => allowed.iter().any(|a| match a.get("exists") {
                Some(exists) => exists.as_bool() == Some(value.is_some()),
                None => {
                    value.is_some_and(|v| v == a || v.as_array().is_some_and(|vs| vs.contains(a)))
                }
            }),
            other => panic!("{key}: {other}"),
        }
    })
}

#[test]
fn the_cloudtrail_rule_matches_only_successful_changes_to_the_managed_group() {
    let t = template();
    let group = "sg-0123456789abcdef0";
    let params = BTreeMap::from([("DatabaseSecurityGroupId", group)]);
    let pattern = resolved(
        &t["Resources"]["DriftCheckFunction"]["Properties"]["Events"]["SecurityGroupChanged"]["Properties"]
            ["Pattern"],
        &params,
    );
    let text =
        std::fs::read_to_string(repo_root().join("events/drift-check-cloudtrail.json")).unwrap();
    let authorize: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(authorize["detail"]["requestParameters"]["groupId"], group);
    assert!(matches(&pattern, &authorize), "{pattern:#}");

    let mut revoke = authorize.clone();
    revoke["detail"]["eventName"] = "RevokeSecurityGroupIngress".into();
    assert!(matches(&pattern, &revoke));

    let mut modify = authorize.clone();
    modify["detail"]["eventName"] = "ModifySecurityGroupRules".into();
    modify["detail"]["requestParameters"] = serde_json::json!({
        "ModifySecurityGroupRulesRequest": {"GroupId": group, "SecurityGroupRule": {}}
    });
    assert!(matches(&pattern, &modify));

    let mut other_group = authorize.clone();
    other_group["detail"]["requestParameters"]["groupId"] = "sg-0fffffffffffffff0".into();
    assert!(!matches(&pattern, &other_group), "another group");
    let mut other_modify = modify.clone();
    other_modify["detail"]["requestParameters"]["ModifySecurityGroupRulesRequest"]["GroupId"] =
        "sg-0fffffffffffffff0".into();
    assert!(!matches(&pattern, &other_modify), "another group, nested");

    let mut failed = authorize.clone();
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
    assert!(
        !matches(&pattern, &failed),
        "a call that failed changed nothing"
    );

    let mut other_call = authorize.clone();
    other_call["detail"]["eventName"] = "DescribeSecurityGroupRules".into();
    assert!(!matches(&pattern, &other_call));
}

/// A prefix list a managed group references may be widened to 0.0.0.0/0 without touching the
/// group: a successful ModifyManagedPrefixList or RestoreManagedPrefixListVersion, on any list
/// (the event names the list, not the group), starts a check; a failed one, or a list being
/// created, does not.
#[test]
fn the_cloudtrail_rule_matches_changes_to_prefix_lists() {
    let t = template();
    let params = BTreeMap::from([("DatabaseSecurityGroupId", "sg-0123456789abcdef0")]);
    let pattern = resolved(
        &t["Resources"]["DriftCheckFunction"]["Properties"]["Events"]["SecurityGroupChanged"]["Properties"]
            ["Pattern"],
        &params,
    );
    let text =
        std::fs::read_to_string(repo_root().join("events/drift-check-cloudtrail-prefix-list.json"))
            .unwrap();
    let modify: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(matches(&pattern, &modify), "{pattern:#}");
    let mut restore = modify.clone();
    restore["detail"]["eventName"] = "RestoreManagedPrefixListVersion".into();
    assert!(matches(&pattern, &restore));

    let mut failed = modify.clone();
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
    assert!(
        !matches(&pattern, &failed),
        "a call that failed changed nothing"
    );
    let mut create = modify.clone();
    create["detail"]["eventName"] = "CreateManagedPrefixList".into();
    assert!(
        !matches(&pattern, &create),
        "no group references a new list yet"
    );
}

/// A flood on the bus cannot take the Function URL's executions: bus events go to a function of
/// their own (the same code) with one reserved execution, and the function behind the URL has
/// no bus rule.
#[test]
fn the_bus_and_the_function_url_never_share_executions() {
    let t = template();
    let events_of = |function: &str| -> Vec<String> {
        match &t["Resources"][function]["Properties"]["Events"] {
            Value::Mapping(m) => m
                .values()
                .filter_map(|e| e["Type"].as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    };
    let url = &t["Resources"]["SgIpUpdateFunction"]["Properties"];
    assert!(url["FunctionUrlConfig"] != Value::Null);
    assert!(
        events_of("SgIpUpdateFunction").is_empty(),
        "{:?}",
        events_of("SgIpUpdateFunction")
    );
    let bus = &t["Resources"]["SgIpUpdateBusFunction"];
    assert_eq!(bus["Properties"]["FunctionUrlConfig"], Value::Null);
    assert_eq!(events_of("SgIpUpdateBusFunction"), ["EventBridgeRule"]);
    assert_eq!(
        bus["Metadata"], t["Resources"]["SgIpUpdateFunction"]["Metadata"],
        "the same binary"
    );
    assert_eq!(bus["Properties"]["CodeUri"], url["CodeUri"]);
    assert_eq!(
        untag(&bus["Properties"]["ReservedConcurrentExecutions"])[1].as_u64(),
        Some(1)
    );
}

#[test]
fn dead_letter_queues_admit_only_this_stacks_rules() {
    let t = template();
    // Each queue, and the rules SAM generates (<function><event>) that dead-letter into it.
    let mut senders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (function, f) in resources_of_type(&t, "AWS::Serverless::Function") {
        let Value::Mapping(events) = &f["Properties"]["Events"] else {
            continue;
        };
        for (name, e) in events {
            if e["Type"].as_str() != Some("EventBridgeRule") {
                continue;
            }
            if let Some(queue) = get_att_arn(&e["Properties"]["DeadLetterConfig"]["Arn"]) {
                let rule = format!("{function}{}", name.as_str().unwrap());
                senders.entry(queue).or_default().insert(rule);
            }
        }
    }
    assert_eq!(senders.len(), 2, "{senders:?}");

    let policies = resources_of_type(&t, "AWS::SQS::QueuePolicy");
    assert_eq!(policies.len(), 2);
    for (name, policy) in policies {
        let p = &policy["Properties"];
        let Value::Sequence(queues) = &p["Queues"] else {
            panic!("{name}: Queues")
        };
        assert_eq!(queues.len(), 1, "{name}");
        let (_, queue) = tagged(&queues[0]).expect("!Ref QUEUE");
        let queue = queue.as_str().unwrap();
        let Value::Sequence(statements) = &p["PolicyDocument"]["Statement"] else {
            panic!("{name}: Statement")
        };
        let mut admitted = BTreeSet::new();
        for s in statements {
            let principals = strings(&s["Principal"]["Service"]);
            assert_eq!(principals, ["events.amazonaws.com"], "{name}: {s:?}");
            let source = &s["Condition"]["ArnEquals"]["aws:SourceArn"];
            admitted.insert(get_att_arn(source).unwrap_or_else(|| {
                panic!("{name}: every statement names its rule in aws:SourceArn: {s:?}")
            }));
        }
        assert_eq!(Some(&admitted), senders.get(queue), "{name}");
    }
}

/// What each alarm watches: `(namespace, metric, dimension value)`.
fn alarms(t: &Value) -> Vec<(String, String, String)> {
    resources_of_type(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| {
            let p = &a["Properties"];
            let dimension = match &p["Dimensions"] {
                Value::Sequence(d) if d.len() == 1 => match tagged(&d[0]["Value"]) {
                    Some((tag, v)) => format!("{tag} {}", v.as_str().unwrap_or_default()),
                    None => String::new(),
                },
                _ => String::new(),
            };
            (
                format!("{:?}", p["Namespace"]),
                p["MetricName"].as_str().unwrap_or_default().to_owned(),
                dimension,
            )
        })
        .collect()
}

#[test]
fn every_failures_queue_and_synchronous_function_has_an_alarm() {
    let t = template();
    let watched = alarms(&t);
    let has = |namespace: &str, metric: &str, dimension: &str| {
        watched.iter().any(|(n, m, d)| {
            n == &format!("{:?}", Value::String(namespace.into())) && m == metric && d == dimension
        })
    };
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    assert_eq!(queues.len(), 2);
    for (queue, _) in queues {
        assert!(
            has(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &format!("GetAtt {queue}.QueueName")
            ),
            "{queue}: no depth alarm in {watched:?}"
        );
    }
    for function in ["PostConfirmationFunction", "SgIpUpdateFunction"] {
        assert!(
            has("AWS/Lambda", "Throttles", &format!("Ref {function}")),
            "{function}: no throttles alarm in {watched:?}"
        );
    }
}

/// pre-sign-up's two metrics (a sign-up let on unchecked, every sign-up refused on a setting)
/// each have an alarm on the namespace the template gives the function, with the names the
/// function writes.
#[test]
fn pre_sign_ups_fail_open_and_misconfigured_metrics_are_alarmed_where_it_writes_them() {
    let t = template();
    let sub = |v: &Value| match tagged(v) {
        Some((tag, value)) if tag == "Sub" => value.as_str().map(str::to_owned),
        _ => None,
    };
    let env = &t["Resources"]["PreSignUpFunction"]["Properties"]["Environment"]["Variables"];
    let written = sub(&env["METRICS_NAMESPACE"]).expect("METRICS_NAMESPACE is a !Sub");
    assert!(written.contains("${AWS::StackName}"), "{written}");
    for (alarm, metric) in [
        ("PreSignUpFailedOpenAlarm", pre_sign_up::FAILED_OPEN_METRIC),
        (
            "PreSignUpMisconfiguredAlarm",
            pre_sign_up::MISCONFIGURED_METRIC,
        ),
    ] {
        let a = &t["Resources"][alarm]["Properties"];
        assert_eq!(
            sub(&a["Namespace"]).as_deref(),
            Some(written.as_str()),
            "{alarm}"
        );
        assert_eq!(a["MetricName"].as_str(), Some(metric), "{alarm}");
        assert_eq!(
            a["Threshold"].as_u64(),
            Some(0),
            "{alarm}: the first one counts"
        );
        assert_eq!(a["Statistic"].as_str(), Some("Sum"), "{alarm}");
        assert!(
            format!("{:?}", a["AlarmActions"]).contains("AlarmTopicArn"),
            "{alarm}"
        );
    }
}

#[test]
fn the_drift_alarm_watches_the_namespace_drift_check_writes_to() {
    let t = template();
    let sub = |v: &Value| match tagged(v) {
        Some((tag, value)) if tag == "Sub" => value.as_str().map(str::to_owned),
        _ => None,
    };
    let env = &t["Resources"]["DriftCheckFunction"]["Properties"]["Environment"]["Variables"];
    let written = sub(&env["METRICS_NAMESPACE"]).expect("METRICS_NAMESPACE is a !Sub");
    assert!(
        written.contains("${AWS::StackName}"),
        "scoped per stack: {written}"
    );
    let alarm = &t["Resources"]["DriftFoundAlarm"]["Properties"];
    assert_eq!(sub(&alarm["Namespace"]).as_deref(), Some(written.as_str()));
    assert_eq!(alarm["MetricName"].as_str(), Some("Findings"));
}

#[test]
fn the_optional_trail_is_private_retained_and_writable_only_by_its_own_trail() {
    let t = template();
    let r = &t["Resources"];
    assert_eq!(
        t["Parameters"]["CreateTrail"]["Default"].as_str(),
        Some("false")
    );
    for name in ["TrailBucket", "TrailBucketPolicy", "ManagementEventsTrail"] {
        assert_eq!(
            r[name]["Condition"].as_str(),
            Some("CreatesTrail"),
            "{name}"
        );
    }
    let bucket = &r["TrailBucket"];
    assert_eq!(bucket["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(bucket["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting].as_bool(), Some(true), "{setting}");
    }
    let trail = &r["ManagementEventsTrail"]["Properties"];
    assert_eq!(trail["IsLogging"].as_bool(), Some(true));
    let selector = &trail["EventSelectors"][0];
    assert_eq!(selector["IncludeManagementEvents"].as_bool(), Some(true));
    let trail_name = match tagged(&trail["TrailName"]) {
        Some((tag, v)) if tag == "Sub" => v.as_str().unwrap().to_owned(),
        other => panic!("TrailName: {other:?}"),
    };
    let Value::Sequence(statements) =
        &r["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    else {
        panic!("TrailBucketPolicy")
    };
    assert_eq!(statements.len(), 2);
    for s in statements {
        assert_eq!(
            strings(&s["Principal"]["Service"]),
            ["cloudtrail.amazonaws.com"]
        );
        let source = match tagged(&s["Condition"]["StringEquals"]["aws:SourceArn"]) {
            Some((tag, v)) if tag == "Sub" => v.as_str().unwrap().to_owned(),
            other => panic!("{s:?}: {other:?}"),
        };
        assert!(
            source.ends_with(&format!(":trail/{trail_name}")),
            "{source}"
        );
    }
}

#[test]
fn the_dashboard_shows_sign_ups_ip_moves_every_drift_kind_and_durations() {
    let t = template();
    // With every part deployed (each part's widgets are there only when it is:
    // template_parts.rs); a resource's name reads `<Name>`, the stack's `<AWS::StackName>`.
    let every_part = common::layout::Layout::new(
        &t,
        &[
            ("DeploySignUpSync", "true"),
            ("DeployDeveloperAccess", "true"),
            ("DeployDriftCheck", "true"),
            ("DatabaseSecurityGroupId", "sg-0bbbbbbbbbbbbbbb2"),
        ],
    );
    let body = every_part
        .value(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
        .and_then(|b| b.as_str().map(str::to_owned))
        .expect("DashboardBody is a string");
    let dashboard: serde_json::Value = serde_json::from_str(&body).expect("the body is JSON");
    // Each metric as its line's strings: namespace, name, dimension name and value.
    let metrics: Vec<Vec<String>> = dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().unwrap().clone())
        .map(|m| {
            m.as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .collect();
    let shows = |line: &[&str]| metrics.iter().any(|m| m == line);
    for (function, what) in [
        (
            "PostConfirmationFunction",
            ["Invocations", "Errors", "Duration"].as_slice(),
        ),
        ("SgIpUpdateFunction", &["Invocations", "Errors", "Duration"]),
        ("DriftCheckFunction", &["Duration"]),
    ] {
        for metric in what {
            let dimension = format!("<{function}>");
            assert!(
                shows(&["AWS/Lambda", metric, "FunctionName", &dimension]),
                "{function} {metric}: {metrics:?}"
            );
        }
    }
    let env = &t["Resources"]["DriftCheckFunction"]["Properties"]["Environment"]["Variables"];
    let namespace = match tagged(&env["METRICS_NAMESPACE"]) {
        Some((_, v)) => v
            .as_str()
            .unwrap()
            .replace("${AWS::StackName}", "<AWS::StackName>"),
        None => panic!("METRICS_NAMESPACE"),
    };
    for kind in drift_check::report::Kind::ALL {
        let kind = kind.to_string();
        assert!(
            shows(&[&namespace, "Findings", "Kind", &kind]),
            "findings of kind {kind}: {metrics:?}"
        );
    }
}
