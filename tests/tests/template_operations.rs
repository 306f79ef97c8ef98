//! template.yaml as it runs, layout by layout: its conditions and rules evaluated for the
//! parameters a deploy gives, so that what the template promises for every layout is checked
//! in each: custom resources answered once and waited for long enough, an alarm when
//! drift-check stops running, every function that reaches the database given its host and
//! name, and, behind RDS Proxy, only logins the proxy's auth lists. Each check is also run on
//! a planted bad copy, where it must fire.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value as J;
use serde_norway::Value;

mod common;
use common::layout::Layout;
use common::{get_att_arn, template};

/// The time CloudFormation must wait past a custom-resource function's own timeout: the run's
/// clock starts only once the environment is up, and a VPC function idle for weeks first gets
/// its network interface back (then its init fetches a secret).
const COLD_START_MARGIN_S: u64 = 120;

/// The longest an alarm may look back over (EvaluationPeriods x Period), in seconds.
const ALARM_LOOKBACK_MAX_S: u64 = 86_400;

const PROXY: &str = "app-proxy.proxy-abcdefghijkl.eu-west-1.rds.amazonaws.com";
const OWN_SECRET: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:own-AbCdEf";
const POOL: &str = "eu-west-1_AbCdEf123";

/// The layouts of issue 36 (a new account; an existing VPC with its own endpoints; an
/// existing pool; the sign-up sync alone) and the two proxy layouts, by the parameters each
/// gives beyond the required ones. A parameter the template does not declare is left out.
fn layouts() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "a new account: new pool, endpoints created",
            vec![
                ("DeployDeveloperAccess", "true"),
                ("DatabaseSecurityGroupId", "sg-0bbbbbbbbbbbbbbb2"),
                ("SecretsManagerVpcEndpoint", "create"),
                ("Ec2VpcEndpoint", "create"),
                ("VpcId", "vpc-0aaaaaaaaaaaaaaa1"),
                ("EndpointClientCidrs", "10.0.0.0/16"),
            ],
        ),
        (
            "an existing VPC and its endpoints, by NAT",
            vec![
                ("SecretsManagerVpcEndpoint", "existing"),
                ("Ec2VpcEndpoint", "none"),
            ],
        ),
        (
            "an existing pool with its own triggers",
            vec![("UserPoolId", "eu-west-1_AbCdEf123")],
        ),
        (
            "an existing pool, our PreSignUp too",
            vec![
                ("UserPoolId", "eu-west-1_AbCdEf123"),
                ("PreSignUpOnExistingPool", "true"),
            ],
        ),
        (
            "the sign-up sync alone",
            vec![
                ("DeployDeveloperAccess", "false"),
                ("DeployDriftCheck", "false"),
                ("DatabaseSecurityGroupId", ""),
            ],
        ),
        (
            "behind RDS Proxy, passwords",
            vec![
                ("DbProxyEndpoint", PROXY),
                ("PostConfirmationSecretArn", OWN_SECRET),
                ("PreSignUpSecretArn", OWN_SECRET),
                ("SignInGuardSecretArn", OWN_SECRET),
            ],
        ),
        (
            "behind RDS Proxy, IAM",
            vec![
                ("DbProxyEndpoint", PROXY),
                ("DbProxyIamAuth", "true"),
                ("DbProxyResourceId", "prx-0abc"),
                ("DbIamUser", "post_confirmation_iam"),
                ("PreSignUpSecretArn", OWN_SECRET),
                ("SignInGuardSecretArn", OWN_SECRET),
            ],
        ),
    ]
}

/// Each function in the VPC (it reaches the database) that, in some layout, is not given
/// `DB_HOST` (DbHost, or for a trigger the proxy's endpoint) or `DB_NAME`.
fn functions_without_their_host(t: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (layout, given) in layouts() {
        let l = Layout::new(t, &given);
        assert_eq!(l.refusals(), Vec::<String>::new(), "{layout} deploys");
        let db_host = l.params["DbHost"].clone();
        let proxy = l.params["DbProxyEndpoint"].clone();
        for (name, f) in l.functions() {
            if l.value(&f["Properties"]["VpcConfig"]).is_none() {
                continue;
            }
            let env = l.environment(f);
            let got = |var: &str| env.get(var).cloned().flatten();
            let host = got("DB_HOST");
            let host = host.as_ref().and_then(J::as_str).unwrap_or("");
            if host.is_empty() || (host != db_host && host != proxy) {
                missing.push(format!("{layout}: {name} DB_HOST {host:?}"));
            }
            let db = got("DB_NAME");
            if db.as_ref().and_then(J::as_str).is_none_or(str::is_empty) {
                missing.push(format!("{layout}: {name} DB_NAME {db:?}"));
            }
        }
    }
    missing
}

#[test]
fn every_function_in_the_vpc_is_given_its_host_and_database_in_every_layout() {
    let t = template();
    assert_eq!(functions_without_their_host(&t), Vec::<String>::new());
    // Required, since a rule cannot tell an RDS-managed secret (rds!db-..., no host, no
    // dbname) from another: a deploy without them is refused before anything is made.
    for parameter in ["DbHost", "DbName"] {
        let p = &t["Parameters"][parameter];
        assert!(p.get("Default").is_none(), "{parameter} is required: {p:?}");
        // Anchored, its first character class required: an empty value is refused too.
        let pattern = p["AllowedPattern"].as_str().unwrap_or("");
        let after_first_class = pattern
            .strip_prefix("^[")
            .and_then(|rest| rest.split_once(']'))
            .map(|(_, after)| after);
        assert!(
            pattern.ends_with('$')
                && after_first_class.is_some_and(|a| !a.starts_with(['*', '?', '{'])),
            "{parameter} refuses an empty value: {pattern}"
        );
    }

    // Planted: a function in the VPC that drops DB_HOST.
    let mut planted = t.clone();
    let mut f = t["Resources"]["SgIpUpdateFunction"].clone();
    f["Properties"]["Environment"]["Variables"]["DB_HOST"] =
        serde_norway::from_str("!Ref AWS::NoValue").unwrap();
    planted["Resources"]["PlantedFunction"] = f;
    let found = functions_without_their_host(&planted);
    assert!(
        found.iter().any(|m| m.contains("PlantedFunction DB_HOST")),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|m| m.contains("SgIpUpdateFunction")),
        "{found:?}"
    );

    // Planted: yesterday's wiring, DbHost optional and passed on only when given.
    let mut planted = t.clone();
    planted["Parameters"]["DbHost"]["Default"] = "".into();
    planted["Conditions"]["HasDbHost"] =
        serde_norway::from_str("!Not [!Equals [!Ref DbHost, \"\"]]").unwrap();
    planted["Globals"]["Function"]["Environment"]["Variables"]["DB_HOST"] =
        serde_norway::from_str("!If [HasDbHost, !Ref DbHost, !Ref AWS::NoValue]").unwrap();
    let found = functions_without_their_host(&planted);
    assert!(
        found
            .iter()
            .any(|m| m.contains("DriftCheckFunction DB_HOST")),
        "{found:?}"
    );
}

/// Each function CloudFormation sends custom-resource requests to (a custom resource's
/// `ServiceToken`) that Lambda would retry, or whose resource does not wait for its timeout
/// plus a cold start. A `ServiceToken` that hands the request on (cfn-responder's
/// `TARGET_FUNCTION_ARN`) waits in turn for its target's timeout plus a cold start in the VPC.
fn custom_resource_waits(t: &Value) -> Vec<String> {
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    let mut problems = Vec::new();
    let mut custom = 0;
    for (name, r) in resources {
        let kind = r["Type"].as_str().unwrap_or("");
        if !kind.starts_with("Custom::") && kind != "AWS::CloudFormation::CustomResource" {
            continue;
        }
        custom += 1;
        let name = name.as_str().unwrap();
        let p = &r["Properties"];
        let function = get_att_arn(&p["ServiceToken"])
            .unwrap_or_else(|| panic!("{name}: ServiceToken {:?}", p["ServiceToken"]));
        let f = &t["Resources"][function.as_str()]["Properties"];
        let retries = f["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64();
        if retries != Some(0) {
            problems.push(format!(
                "{function} (for {name}) keeps async retries: {retries:?}"
            ));
        }
        let timeout = f["Timeout"]
            .as_u64()
            .or(t["Globals"]["Function"]["Timeout"].as_u64())
            .unwrap_or(3);
        if let Some(target) = get_att_arn(&f["Environment"]["Variables"]["TARGET_FUNCTION_ARN"]) {
            let target_timeout = t["Resources"][target.as_str()]["Properties"]["Timeout"]
                .as_u64()
                .or(t["Globals"]["Function"]["Timeout"].as_u64())
                .unwrap_or(3);
            if timeout < target_timeout + COLD_START_MARGIN_S {
                problems.push(format!(
                    "{function} (for {name}) waits {timeout} s for {target}'s {target_timeout} s \
                     + {COLD_START_MARGIN_S} s"
                ));
            }
        }
        let wait = p["ServiceTimeout"].as_u64().unwrap_or(3600);
        if wait < timeout + COLD_START_MARGIN_S || wait > 3600 {
            problems.push(format!(
                "{name} waits {wait} s for {function}'s {timeout} s + {COLD_START_MARGIN_S} s"
            ));
        }
    }
    assert!(custom > 0, "the template has custom resources");
    problems
}

#[test]
fn custom_resource_functions_take_no_async_retries_and_wait_for_a_cold_start() {
    let t = template();
    assert_eq!(custom_resource_waits(&t), Vec::<String>::new());

    let mut planted = t.clone();
    planted["Resources"]["CfnResponderFunction"]["Properties"]
        .as_mapping_mut()
        .unwrap()
        .remove("EventInvokeConfig");
    let found = custom_resource_waits(&planted);
    assert!(
        found
            .iter()
            .any(|p| p.contains("CfnResponderFunction (for SchemaMigrations) keeps async retries")),
        "{found:?}"
    );

    // The chain: the responder must outwait the migrations' cold start, and CloudFormation the
    // responder's.
    let mut planted = t.clone();
    planted["Resources"]["CfnResponderFunction"]["Properties"]["Timeout"] = 300.into();
    assert_eq!(
        custom_resource_waits(&planted),
        [format!(
            "CfnResponderFunction (for SchemaMigrations) waits 300 s for SchemaMigrationsFunction's \
             300 s + {COLD_START_MARGIN_S} s"
        )]
    );
    let mut planted = t.clone();
    planted["Resources"]["SchemaMigrations"]["Properties"]["ServiceTimeout"] = 420.into();
    assert_eq!(
        custom_resource_waits(&planted),
        [format!(
            "SchemaMigrations waits 420 s for CfnResponderFunction's 420 s + {COLD_START_MARGIN_S} s"
        )]
    );

    let mut planted = t.clone();
    planted["Resources"]["PoolPreSignUpTrigger"]["Properties"]["ServiceTimeout"] = 120.into();
    let found = custom_resource_waits(&planted);
    assert_eq!(
        found,
        ["PoolPreSignUpTrigger waits 120 s for PoolTriggerFunction's 60 s + 120 s"]
    );
}

/// `rate(N unit)` in seconds.
fn rate_seconds(expression: &str) -> u64 {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a rate: {expression}"));
    let (n, unit) = inner.split_once(' ').unwrap();
    let n: u64 = n.parse().unwrap();
    n * match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        other => panic!("unit {other}"),
    }
}

/// What is wrong with the alarm that drift-check stopped running, for each schedule
/// DriftSchedule allows: it must watch a metric every recorded run emits, breach on missing
/// data, and alarm only when two whole schedule periods passed with no run.
fn missed_run_alarm_problems(t: &Value) -> Vec<String> {
    let env = &t["Resources"]["DriftCheckFunction"]["Properties"]["Environment"]["Variables"];
    let namespace = format!("{:?}", env["METRICS_NAMESPACE"]);
    let alarms: Vec<(&str, &Value)> = common::resources_of_type(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["TreatMissingData"].as_str() == Some("breaching"))
        .filter(|(_, a)| format!("{:?}", a["Properties"]["Namespace"]) == namespace)
        .collect();
    let [(name, alarm)] = alarms[..] else {
        return vec![format!(
            "one alarm breaching on drift-check's missing runs: {alarms:?}"
        )];
    };
    let p = &alarm["Properties"];
    let mut problems = Vec::new();
    // A run with nothing to report still emits one undimensioned sample of this metric.
    let lines = drift_check::report::metric_lines(&BTreeMap::new(), "ns", SystemTime::now());
    let per_run = lines.iter().any(|l| {
        let m = &l["_aws"]["CloudWatchMetrics"][0];
        m["Dimensions"] == serde_json::json!([[]])
            && m["Metrics"][0]["Name"].as_str() == p["MetricName"].as_str()
    });
    if !per_run || p.get("Dimensions").is_some() {
        problems.push(format!(
            "{name}: {:?} is not a sample every run emits",
            p["MetricName"]
        ));
    }
    let fires_below_one = p["Statistic"].as_str() == Some("SampleCount")
        && p["ComparisonOperator"].as_str() == Some("LessThanThreshold")
        && p["Threshold"].as_u64() == Some(1);
    if !fires_below_one {
        problems.push(format!("{name}: fires on fewer than one run per period"));
    }
    let allowed = &t["Parameters"]["DriftSchedule"]["AllowedValues"];
    let schedules = if allowed.is_sequence() {
        common::strings(allowed)
    } else {
        Vec::new()
    };
    if schedules.is_empty() {
        problems.push("DriftSchedule allows any expression: the alarm cannot follow it".into());
    }
    for schedule in schedules {
        let l = Layout::new(t, &[("DriftSchedule", &schedule)]);
        let value = |key: &str| l.value(&p[key]).and_then(|v| v.as_u64());
        let (Some(period), Some(evaluations)) = (value("Period"), value("EvaluationPeriods"))
        else {
            problems.push(format!("{name}: no period for {schedule}"));
            continue;
        };
        let to_alarm = value("DatapointsToAlarm").unwrap_or(evaluations);
        let every = rate_seconds(&schedule);
        // A period shorter than the schedule has no run in it as a matter of course.
        if period < every
            || to_alarm * period < 2 * every
            || evaluations * period > ALARM_LOOKBACK_MAX_S
        {
            problems.push(format!(
                "{schedule}: {to_alarm} of {evaluations} periods of {period} s"
            ));
        }
    }
    problems
}

#[test]
fn an_alarm_fires_when_drift_check_has_not_run_in_two_schedule_periods() {
    let t = template();
    assert_eq!(missed_run_alarm_problems(&t), Vec::<String>::new());

    let mut planted = t.clone();
    planted["Resources"]["DriftCheckMissedRunsAlarm"]["Properties"]["TreatMissingData"] =
        "notBreaching".into();
    let found = missed_run_alarm_problems(&planted);
    assert!(found[0].starts_with("one alarm breaching"), "{found:?}");

    // A period that no longer follows the schedule: rate(6 hours) checked hourly.
    let text = serde_norway::to_string(&t)
        .unwrap()
        .replace("- 21600", "- 3600");
    let planted: Value = serde_norway::from_str(&text).unwrap();
    let found = missed_run_alarm_problems(&planted);
    assert_eq!(found, ["rate(6 hours): 2 of 2 periods of 3600 s"]);

    let mut planted = t.clone();
    planted["Parameters"]["DriftSchedule"]
        .as_mapping_mut()
        .unwrap()
        .remove("AllowedValues");
    let found = missed_run_alarm_problems(&planted);
    assert!(
        found.iter().any(|p| p.contains("allows any expression")),
        "{found:?}"
    );
}

/// Behind the proxy, each function whose `DB_HOST` is the proxy must log in as a user the
/// proxy's auth lists: one whose secret you gave, or IAM. A secret this stack generates is
/// never among them. The layouts the Rules let deploy where one does not.
fn proxy_logins_it_cannot_know(t: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    // A pool created here; an existing one without our PreSignUp, with it, with sign-in-guard.
    let pools = [
        ("", "false", "false"),
        (POOL, "false", "false"),
        (POOL, "true", "false"),
        (POOL, "false", "true"),
    ];
    for (pool, pre_sign_up, guard) in pools {
        for iam in ["false", "true"] {
            for post in ["", OWN_SECRET] {
                for pre in ["", OWN_SECRET] {
                    let given = [
                        ("UserPoolId", pool),
                        ("PreSignUpOnExistingPool", pre_sign_up),
                        ("SignInGuardOnExistingPool", guard),
                        ("DbProxyEndpoint", PROXY),
                        ("DbProxyIamAuth", iam),
                        ("DbProxyResourceId", "prx-0abc"),
                        ("DbIamUser", "post_confirmation_iam"),
                        ("PostConfirmationSecretArn", post),
                        ("PreSignUpSecretArn", pre),
                        // sign-in-guard logs in with a password too, like pre-sign-up.
                        ("SignInGuardSecretArn", pre),
                    ];
                    let l = Layout::new(t, &given);
                    if !l.refusals().is_empty() {
                        continue;
                    }
                    for (name, f) in l.functions() {
                        let env = l.environment(f);
                        let got = |var: &str| env.get(var).cloned().flatten();
                        if got("DB_HOST").as_ref().and_then(J::as_str) != Some(PROXY) {
                            continue;
                        }
                        let iam_login = got("DB_AUTH").as_ref().and_then(J::as_str) == Some("iam");
                        let given_secret =
                            got("DB_SECRET_ARN").as_ref().and_then(J::as_str) == Some(OWN_SECRET);
                        if !iam_login && !given_secret {
                            unknown.push(format!(
                            "iam={iam} post={post:?} pre={pre:?} pool={pool:?}: {name} logs in with {:?}",
                            got("DB_SECRET_ARN")
                        ));
                        }
                    }
                }
            }
        }
    }
    unknown
}

#[test]
fn behind_the_proxy_an_existing_pool_without_our_pre_sign_up_needs_no_pre_sign_up_secret() {
    let t = template();
    // Layout (c), an existing pool that keeps its own PreSignUp, behind the proxy with passwords.
    let c_behind_the_proxy = vec![
        ("UserPoolId", POOL),
        ("DatabaseSecurityGroupId", "sg-0bbbbbbbbbbbbbbb2"),
        ("DbProxyEndpoint", PROXY),
        ("PostConfirmationSecretArn", OWN_SECRET),
    ];
    let l = Layout::new(&t, &c_behind_the_proxy);
    let functions: Vec<&str> = l.functions().into_iter().map(|(n, _)| n).collect();
    assert!(!functions.contains(&"PreSignUpFunction"), "{functions:?}");
    assert!(!functions.contains(&"SignInGuardFunction"), "{functions:?}");
    assert_eq!(l.refusals(), Vec::<String>::new());

    // Our PreSignUp wired on that pool: its secret is asked for again.
    let mut wired = c_behind_the_proxy.clone();
    wired.push(("PreSignUpOnExistingPool", "true"));
    let refused = Layout::new(&t, &wired).refusals();
    assert!(
        refused.len() == 1 && refused[0].contains("PreSignUpSecretArn"),
        "{refused:?}"
    );
}

#[test]
fn behind_the_proxy_every_function_logs_in_as_a_user_the_proxys_auth_lists() {
    let t = template();
    assert_eq!(proxy_logins_it_cannot_know(&t), Vec::<String>::new());

    // Planted: the rule asking for the triggers' secrets only when the proxy uses passwords.
    let mut planted = t.clone();
    planted["Rules"]["ProxyPasswordsNeedTheTriggersSecrets"]["RuleCondition"] = serde_norway::from_str(
        "!And [!Not [!Equals [!Ref DbProxyEndpoint, \"\"]], !Equals [!Ref DbProxyIamAuth, \"false\"]]",
    )
    .unwrap();
    let found = proxy_logins_it_cannot_know(&planted);
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("iam=true") && m.contains("PreSignUpFunction")),
        "{found:?}"
    );
}
