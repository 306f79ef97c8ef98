//! sg-ip-update end to end through the Function URL, with the identity AWS hands the function:
//! rows name a principal (`add_principal`), and only that caller may move them.

use std::time::Duration;

use harness::{Function, event, function_binary};
use serde_json::{Value, json};

#[path = "common/sg.rs"]
mod sg;
use sg::{ANDREW, BEA, Fixture, change, failure, http, url_change};

#[tokio::test]
async fn the_rows_own_principal_moves_it_through_the_function_url() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("18.204.3.77/32").await;
    fx.add_principal(
        "andrew",
        Some(ANDREW),
        false,
        Some(("18.204.3.77/32", &rule_id)),
    )
    .await;
    let f = fx.start_url().await;

    // The sample event as it is: andrew's own signed request.
    let (status, body) = http(&f.invoke(&event("sg-ip-update-function-url.json")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "applied");
    assert_eq!(body["previous_cidr"], "18.204.3.77/32");
    assert_eq!(
        fx.ingress().await,
        vec![(rule_id, "34.201.17.5/32".into(), 5432, 5432)]
    );
    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].outcome.as_str(),
            audit[0].via.as_deref(),
            audit[0].caller_arn.as_deref(),
            audit[0].caller_account_id.as_deref()
        ),
        (
            "applied",
            Some("function_url"),
            Some(ANDREW),
            Some("123456789012")
        )
    );
}

#[tokio::test]
async fn another_developers_principal_naming_andrew_is_refused_and_audited_with_both_identities() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    fx.add_principal("bea", Some(BEA), false, None).await;
    let before = fx.andrews_state().await;
    let f = fx.start_url().await;

    let (status, body) = http(
        &f.invoke(&url_change(Some(BEA), "andrew", "52.14.99.8"))
            .await,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "Permanent.Unauthorized");
    let message = body["message"].as_str().unwrap();
    // The answer is the one an unknown owner gets; the audit below keeps both identities.
    assert!(
        message.contains("andrew") && message.contains("nothing was changed"),
        "{message}"
    );
    assert!(
        !message.contains(ANDREW),
        "the answer does not reveal andrew's principal: {message}"
    );
    assert_eq!(
        fx.andrews_state().await,
        before,
        "EC2 and the row unchanged"
    );

    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let a = &audit[0];
    assert_eq!(
        (
            a.owner.as_str(),
            a.outcome.as_str(),
            a.via.as_deref(),
            a.caller_arn.as_deref()
        ),
        (
            "andrew",
            "refused_unauthorized",
            Some("function_url"),
            Some(BEA)
        )
    );
    let detail = a.detail.as_deref().unwrap();
    assert!(
        detail.contains(BEA) && detail.contains(ANDREW),
        "both identities: {detail}"
    );

    // Bea's own rule is hers to move.
    let (status, body) = http(&f.invoke(&url_change(Some(BEA), "bea", "52.14.99.8")).await);
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("applied")),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_principal_and_a_missing_identity_are_refused() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(true).await;
    // A row that names nobody: no signed request moves it.
    fx.add_principal("cy", None, false, None).await;
    let before = fx.andrews_state().await;
    let f = fx.start_url().await;

    let strangers = [
        "arn:aws:iam::999999999999:user/andrew",
        "arn:aws:iam::123456789012:user/Andrew",
        "arn:aws:sts::123456789012:assumed-role/andrew/andrew",
        "arn:aws:iam::123456789012:user/andrew/",
    ];
    for stranger in strangers {
        let (status, body) = http(
            &f.invoke(&url_change(Some(stranger), "andrew", "52.14.99.8"))
                .await,
        );
        assert_eq!(
            (status, &body["error"]),
            (403, &json!("Permanent.Unauthorized")),
            "{stranger}: {body}"
        );
    }
    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "cy", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("Permanent.Unauthorized")),
        "{body}"
    );
    // No identity at all (a URL with AuthType NONE): refused, even for a row that takes
    // unverified requests, since a Function URL request must be signed.
    let (status, body) = http(&f.invoke(&url_change(None, "andrew", "52.14.99.8")).await);
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("Permanent.NoIdentity")),
        "{body}"
    );

    assert_eq!(
        fx.andrews_state().await,
        before,
        "EC2 and the row unchanged"
    );
    assert_eq!(fx.row("cy").await.0, None);
    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), strangers.len() + 2, "{audit:?}");
    assert!(
        audit.iter().all(
            |a| a.outcome == "refused_unauthorized" && a.via.as_deref() == Some("function_url")
        ),
        "{audit:?}"
    );
    let callers: Vec<Option<&str>> = audit.iter().map(|a| a.caller_arn.as_deref()).collect();
    assert_eq!(&callers[..strangers.len()], strangers.map(Some));
    assert_eq!(callers.last().unwrap(), &None, "no identity, none recorded");
    assert_eq!(audit.last().unwrap().owner, "andrew");
}

#[tokio::test]
async fn a_role_session_matching_the_rows_pattern_moves_it() {
    let fx = Fixture::shared().await;
    fx.add_principal(
        "andrew",
        Some("arn:aws:sts::123456789012:assumed-role/dev-andrew/*"),
        false,
        None,
    )
    .await;
    let f = fx.start_url().await;
    let session = "arn:aws:sts::123456789012:assumed-role/dev-andrew/andrew-laptop";
    let (status, body) = http(
        &f.invoke(&url_change(Some(session), "andrew", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("applied")),
        "{body}"
    );
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");

    for near_miss in [
        "arn:aws:sts::123456789012:assumed-role/dev-andrew-x/andrew-laptop",
        "arn:aws:sts::123456789012:assumed-role/dev-bea/andrew-laptop",
        "arn:aws:sts::999999999999:assumed-role/dev-andrew/andrew-laptop",
        "arn:aws:iam::123456789012:role/dev-andrew",
    ] {
        let (status, _) = http(
            &f.invoke(&url_change(Some(near_miss), "andrew", "18.204.3.77"))
                .await,
        );
        assert_eq!(status, 403, "{near_miss}");
    }
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");
}

/// The bus and bare direct invocations prove no sender: they move only rows with
/// `allow_unverified`, and are refused (permanently, so EventBridge does not retry) and
/// audited for the rest.
#[tokio::test]
async fn bus_events_and_direct_invocations_move_only_rows_that_allow_unverified() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    fx.add_principal("bea", Some(BEA), true, None).await;
    let before = fx.andrews_state().await;
    let f = fx.start().await;

    for request in [
        change("andrew", "52.14.99.8"),
        json!({"owner": "andrew", "ip": "52.14.99.8"}),
    ] {
        let inv = f.invoke(&request).await;
        let (t, m) = failure(&inv);
        assert_eq!(t, "Permanent.Unauthorized", "{m}");
        assert!(
            m.contains("andrew") && m.contains("nothing was changed"),
            "{m}"
        );
    }
    assert_eq!(fx.andrews_state().await, before);
    let audit = fx.audit_callers().await;
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = audit
        .iter()
        .map(|a| {
            (
                a.outcome.as_str(),
                a.via.as_deref(),
                a.caller_arn.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("refused_unauthorized", Some("eventbridge"), None),
            ("refused_unauthorized", Some("direct"), None)
        ]
    );

    // A row that allows it moves by bus and by direct invocation.
    assert_eq!(
        f.invoke(&change("bea", "52.14.99.8")).await.response()["outcome"],
        "applied"
    );
    assert_eq!(
        f.invoke(&json!({"owner": "bea", "ip": "18.204.3.77"}))
            .await
            .response()["outcome"],
        "applied"
    );
    assert_eq!(fx.row("bea").await.0.as_deref(), Some("18.204.3.77/32"));
}

/// Every Function URL refusal or failure is an HTTP answer with a short JSON body: a bad
/// request 400, a refusal 403, a failure that may pass 503.
#[tokio::test]
async fn function_url_errors_are_answered_with_their_status() {
    let fx = Fixture::shared().await;
    fx.add_principal("andrew", Some(ANDREW), false, None).await;
    let f = fx.start_url().await;

    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "andrew", "10.0.0.8"))
            .await,
    );
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("Permanent.InvalidIp")),
        "{body}"
    );
    let mut not_json = url_change(Some(ANDREW), "andrew", "52.14.99.8");
    not_json["body"] = json!("owner=andrew&ip=52.14.99.8");
    let (status, body) = http(&f.invoke(&not_json).await);
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("Permanent.BadEvent")),
        "{body}"
    );
    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "mallory", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("Permanent.Unauthorized")),
        "{body}"
    );
    assert_eq!(fx.row("andrew").await.0, None);

    let mut env = fx.env_as("function_url");
    env.push(("AWS_ENDPOINT_URL_EC2".into(), "http://127.0.0.1:9".into()));
    env.push(("AWS_CALL_TIMEOUT_MS".into(), "1000".into()));
    let down = Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap();
    let inv = down
        .invoke_within(
            &url_change(Some(ANDREW), "andrew", "52.14.99.8"),
            Duration::from_secs(10),
        )
        .await;
    let (status, body) = http(&inv);
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("Retryable.AwsApply")),
        "{body}"
    );
    let outcomes: Vec<String> = fx.audit().await.into_iter().map(|a| a.3).collect();
    assert_eq!(
        outcomes,
        [
            "refused_invalid_ip",
            "refused_invalid_request",
            "refused_unknown_owner",
            "failed"
        ]
    );
}

/// Odd Function URL requests (as a direct invoker could forge them, or a client could send):
/// each gets a 4xx answer, the process lives on, EC2 and the row are unchanged, and each is
/// audited with storable values.
#[tokio::test]
async fn odd_function_url_requests_get_a_4xx_and_change_nothing() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(true).await;
    let before = fx.andrews_state().await;
    let f = fx.start_url().await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut e = url_change(Some(ANDREW), "andrew", "52.14.99.8");
        edit(&mut e);
        e
    };
    let cases = [
        (with(&|e| e["requestContext"] = Value::Null), 400),
        (with(&|e| e["body"] = Value::Null), 400),
        (with(&|e| e["body"] = json!("x".repeat(100_000))), 400),
        (
            with(&|e| e["body"] = json!(r#"{"owner":"andrew","ip":"52.14.99.8","extra":1}"#)),
            400,
        ),
        (with(&|e| e["isBase64Encoded"] = json!(true)), 400),
        (
            with(&|e| {
                e["isBase64Encoded"] = json!(true);
                e["body"] = json!("//79AA==");
            }),
            400,
        ),
        (
            with(&|e| e["requestContext"]["http"]["method"] = json!("PUT")),
            400,
        ),
        (
            with(&|e| e["requestContext"]["authorizer"]["iam"] = json!({})),
            403,
        ),
        (
            with(&|e| {
                e["requestContext"]["authorizer"]["iam"]["userArn"] =
                    json!(format!("{ANDREW}\u{0}"))
            }),
            403,
        ),
        (
            with(&|e| {
                e["requestContext"]["authorizer"]["iam"]["userArn"] =
                    json!(format!("{ANDREW}{}", "x".repeat(5000)))
            }),
            403,
        ),
        (
            with(&|e| e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(7)),
            400,
        ),
    ];
    for (i, (request, expected)) in cases.iter().enumerate() {
        let (status, body) = http(&f.invoke(request).await);
        assert_eq!(status, *expected, "case {i}: {body}");
        assert!(
            body["message"].as_str().unwrap().len() < 1000,
            "case {i}: {body}"
        );
        assert!(f.exit_status().is_none(), "case {i} killed the process");
    }
    assert_eq!(fx.andrews_state().await, before);
    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), cases.len(), "{audit:?}");
    assert!(
        audit
            .iter()
            .all(|a| a.via.as_deref() == Some("function_url")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .filter_map(|a| a.caller_arn.as_deref())
            .all(|c| c.chars().count() <= 301),
        "{audit:?}"
    );
}

/// Owner names cannot be found by trying them: an owner with no row, a row naming another
/// principal, and a row that takes no unsigned request all get the same answer, byte for byte
/// but the owner's name; the audit keeps which it was.
#[tokio::test]
async fn an_unknown_owner_and_a_refused_caller_get_the_same_answer() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    fx.add_principal("bea", Some(BEA), false, None).await;
    let (url, bus) = (fx.start_url().await, fx.start().await);
    let answer_for = async |owner: &str, caller: Option<&str>| {
        let inv = match caller {
            Some(c) => url.invoke(&url_change(Some(c), owner, "52.14.99.8")).await,
            None => bus.invoke(&change(owner, "52.14.99.8")).await,
        };
        let text = match caller {
            Some(_) => {
                let (status, body) = http(&inv);
                format!("{status} {body}")
            }
            None => format!("{:?}", failure(&inv)),
        };
        text.replace(owner, "OWNER")
    };
    // Signed by bea: andrew's row names andrew; nobody has a row "nobody".
    let refused = answer_for("andrew", Some(BEA)).await;
    assert_eq!(refused, answer_for("nobody", Some(BEA)).await);
    assert!(refused.starts_with("403 "), "{refused}");
    // Unsigned, on the bus: andrew's row takes no unsigned request; "nobody" has no row.
    let unsigned = answer_for("andrew", None).await;
    assert_eq!(unsigned, answer_for("nobody", None).await);
    let outcomes: Vec<String> = fx.audit().await.into_iter().map(|a| a.3).collect();
    assert_eq!(
        outcomes,
        [
            "refused_unauthorized",
            "refused_unknown_owner",
            "refused_unauthorized",
            "refused_unknown_owner"
        ]
    );
}

/// The audit's addresses for each request, in order: (outcome, asked-for address, the source
/// address AWS saw).
async fn audit_addresses(fx: &Fixture) -> Vec<(String, Option<String>, Option<String>)> {
    fx.db
        .connect_as_app()
        .await
        .unwrap()
        .query(
            "SELECT outcome, new_cidr, source_ip FROM ip_update_audit ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// "My IP changed", as AWS saw it: a signed request without `ip` moves the rule to the address
/// the request came from (`requestContext.http.sourceIp`); an
/// explicit address is still taken, and audited beside the source address; so is a refusal.
#[tokio::test]
async fn without_ip_the_rule_moves_to_the_address_aws_saw_and_every_request_keeps_it() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    fx.add_principal("bea", Some(BEA), false, None).await;
    let f = fx.start_url().await;

    let mut bare = url_change(Some(ANDREW), "andrew", "unused");
    bare["body"] = json!(json!({"owner": "andrew"}).to_string());
    bare["requestContext"]["http"]["sourceIp"] = json!("18.204.3.77");
    let (status, body) = http(&f.invoke(&bare).await);
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("applied")),
        "{body}"
    );
    assert_eq!(body["cidr"], "18.204.3.77/32");
    assert_eq!(fx.ingress().await[0].1, "18.204.3.77/32");

    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "andrew", "52.14.99.8"))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");

    let (status, _) = http(
        &f.invoke(&url_change(Some(BEA), "andrew", "18.204.3.77"))
            .await,
    );
    assert_eq!(status, 403);

    // The sample's source address, for the two requests built from it.
    let sample = Some("34.201.17.5".to_owned());
    assert_eq!(
        audit_addresses(&fx).await,
        vec![
            (
                "applied".into(),
                Some("18.204.3.77/32".into()),
                Some("18.204.3.77".into())
            ),
            (
                "applied".into(),
                Some("52.14.99.8/32".into()),
                sample.clone()
            ),
            (
                "refused_unauthorized".into(),
                Some("18.204.3.77".into()),
                sample
            ),
        ]
    );

    // No `ip` and no source address (not a request AWS would hand over): refused clearly.
    bare["requestContext"]["http"]["sourceIp"] = json!("");
    let (status, body) = http(&f.invoke(&bare).await);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("no ip"),
        "{body}"
    );
}

/// The workspace side: `scripts/send-ip-change` sends no address unless given one (the
/// function takes the one AWS saw), signs with the caller's keys, and refuses a bad address
/// before sending. `curl` is a stand-in that records its arguments.
#[test]
fn send_ip_change_sends_no_address_unless_given_one() {
    let dir = std::env::temp_dir().join(format!("send-ip-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let curl = dir.join("curl");
    std::fs::write(
        &curl,
        "#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' \"$@\" >\"$0.args\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |args: &[&str]| {
        let _ = std::fs::remove_file(dir.join("curl.args"));
        let out =
            std::process::Command::new(harness::stack::repo_root().join("scripts/send-ip-change"))
                .args(args)
                .env(
                    "PATH",
                    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
                )
                .env(
                    "IP_CHANGE_URL",
                    "https://abcdef123456.lambda-url.eu-west-1.on.aws/",
                )
                .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
                .env("AWS_SECRET_ACCESS_KEY", "secret")
                .output()
                .unwrap();
        let sent = std::fs::read_to_string(dir.join("curl.args")).unwrap_or_default();
        (out.status.code(), sent)
    };
    let (code, sent) = run(&["andrew"]);
    assert_eq!(code, Some(0), "{sent}");
    assert!(sent.lines().any(|l| l == r#"{"owner":"andrew"}"#), "{sent}");
    assert!(sent.contains("aws:amz:eu-west-1:lambda"), "{sent}");
    let (code, sent) = run(&["andrew", "52.14.99.8"]);
    assert_eq!(code, Some(0));
    assert!(
        sent.lines()
            .any(|l| l == r#"{"owner":"andrew","ip":"52.14.99.8"}"#),
        "{sent}"
    );
    let (code, sent) = run(&["andrew", "52.14.99.8\"}"]);
    assert_eq!(
        (code, sent.as_str()),
        (Some(2), ""),
        "a bad address is never sent"
    );
    std::fs::remove_dir_all(&dir).ok();
}
