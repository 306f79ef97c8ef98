//! The hostile corpus (`tests/corpus/<function>/*.json`, sent as raw bytes, so not all of them
//! are JSON) plus generated huge and deeply nested payloads, against the real binaries. Every
//! input ends in a clear error, the process lives on, and Postgres and EC2 are as they were
//! (refused IP requests are written to the audit log, by design).

use std::{path::PathBuf, time::Duration};

use bytes::Bytes;
use harness::{
    Function, Outcome, Stack, TestDb, aws,
    fixtures::{RuleRow, add_managed_rule, function_env},
    function_binary,
    stack::repo_root,
};

struct World {
    db: TestDb,
    ec2: aws_sdk_ec2::Client,
    group: String,
    pool: String,
}

async fn world() -> World {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let sdk = stack.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let group = aws::create_group(&ec2).await;
    let rule = aws::open_port(&ec2, &group, "34.201.17.5/32", 5432).await;
    add_managed_rule(
        &db,
        &group,
        RuleRow {
            owner: "andrew",
            cidr: Some("34.201.17.5/32"),
            aws_rule_id: Some(&rule),
            ..RuleRow::default()
        },
    )
    .await;
    db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO users (cognito_user_id, email, display_name, handle) VALUES ('existing', 'e@example.com', 'E', 'e')",
            &[],
        )
        .await
        .unwrap();
    let pool = aws::create_pool(&aws_sdk_cognitoidentityprovider::Client::new(&sdk)).await;
    World {
        db,
        ec2,
        group,
        pool,
    }
}

/// Everything the functions could change, as text.
async fn snapshot(w: &World) -> Vec<String> {
    let client = w.db.connect_as_app().await.unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT row_to_json(u)::text FROM users u ORDER BY id",
        "SELECT row_to_json(r)::text FROM managed_ingress_rules r ORDER BY id",
        "SELECT count(*)::text FROM drift_runs",
        "SELECT count(*)::text FROM drift_findings",
        "SELECT to_regclass('users')::text",
    ] {
        out.extend(
            client
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0)),
        );
    }
    let ec2 = aws::ingress(&w.ec2, &w.group)
        .await
        .into_iter()
        .map(|r| format!("{r:?}"));
    out.extend(ec2);
    out
}

fn corpus(function: &str) -> Vec<(String, Bytes)> {
    let dir: PathBuf = repo_root().join("tests/corpus").join(function);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                Bytes::from(std::fs::read(&p).unwrap()),
            )
        })
        .collect()
}

/// Payloads too big or too deep to keep as files.
fn generated() -> Vec<(String, Bytes)> {
    let huge = "x".repeat(1 << 20);
    vec![
        (
            "huge-string".into(),
            Bytes::from(format!(
                "{{\"triggerSource\":\"{huge}\",\"owner\":\"{huge}\",\"mode\":\"{huge}\"}}"
            )),
        ),
        (
            "deep-nesting".into(),
            Bytes::from(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
        ),
        (
            "many-keys".into(),
            Bytes::from(format!(
                "{{{}\"k\":0}}",
                (0..50_000)
                    .map(|i| format!("\"k{i}\":{i},"))
                    .collect::<String>()
            )),
        ),
        ("empty-body".into(), Bytes::new()),
        (
            "binary".into(),
            Bytes::from_static(&[0xff, 0xfe, 0x00, 0x81, 0xc0, 0xaf]),
        ),
    ]
}

#[tokio::test]
async fn hostile_inputs_end_in_clear_errors_and_change_nothing() {
    let w = world().await;
    let before = snapshot(&w).await;
    let stack = Stack::shared();
    let mut tried = 0;
    for function in ["post-confirmation", "sg-ip-update", "drift-check"] {
        let env = function_env(
            &w.db,
            stack,
            &[
                ("SECURITY_GROUP_ID", &w.group),
                ("SG_IP_UPDATE_SOURCE", "eventbridge"),
                ("USER_POOL_ID", &w.pool),
                ("DRIFT_MODE", "remediate"),
            ],
        );
        let f = Function::spawn(&function_binary(function), &env)
            .await
            .unwrap();
        let inputs = corpus(function).into_iter().chain(generated());
        for (name, body) in inputs {
            let is_json = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
            let inv = f.invoke_raw(body, Duration::from_secs(10)).await;
            match &inv.outcome {
                Outcome::Error {
                    error_type,
                    error_message,
                } => {
                    assert!(
                        !error_type.is_empty() && !error_message.is_empty(),
                        "{function}/{name}"
                    );
                    if is_json {
                        assert!(
                            error_type.starts_with("Permanent."),
                            "{function}/{name}: {error_type}: {error_message}"
                        );
                    }
                    assert!(
                        error_message.len() < 2000,
                        "{function}/{name}: the error echoes the input"
                    );
                }
                // An EventBridge event refused for good is answered, not failed (Lambda would
                // retry an error): the refusal is as clear, and as short.
                Outcome::Response(r) if r["outcome"] == "refused" => {
                    let (error_type, message) = (r["error"].as_str(), r["message"].as_str());
                    assert!(
                        function == "sg-ip-update"
                            && error_type.is_some_and(|t| t.starts_with("Permanent."))
                            && message.is_some_and(|m| !m.is_empty() && m.len() < 2000),
                        "{function}/{name}: {r}"
                    );
                }
                other => panic!("{function}/{name}: expected a clear error, got {other:?}"),
            }
            assert!(
                f.exit_status().is_none(),
                "{function}/{name} killed the process"
            );
            tried += 1;
        }
        // An exit is reported a moment after it happens: one caused by the last input shows
        // only after that moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            f.exit_status().is_none(),
            "{function}: the process died after the last input"
        );
    }
    assert!(tried >= 59 + 15, "{tried} inputs");
    assert_eq!(snapshot(&w).await, before, "Postgres and EC2 unchanged");
}
