//! Faults under load: Postgres restarted in the middle of a sign-up burst, the password
//! rotated in the middle of one, and the AWS API gone while drift-check runs. Nothing is lost,
//! nothing is half-done, every failure is a clear error.

use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType, UserStatusType};
use futures_util::future::join_all;
use harness::{
    Function, Outcome, Stack, TestDb, aws, event,
    fixtures::{function_env, secret_env, signup, unique},
    forbid, function_binary,
};
use serde_json::{Value, json};

/// Creates `n` confirmed users; returns the sign-up event Cognito would send for each.
async fn confirmed_users(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    n: usize,
) -> Vec<Value> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        join_all(chunk.iter().map(|i| async move {
            let name = format!("user{i:04}");
            let attr =
                |k: &str, v: String| AttributeType::builder().name(k).value(v).build().unwrap();
            cognito
                .admin_create_user()
                .user_pool_id(pool)
                .username(&name)
                .user_attributes(attr("email", format!("{name}@example.com")))
                .user_attributes(attr("email_verified", "true".to_owned()))
                .message_action(MessageActionType::Suppress)
                .send()
                .await
                .unwrap();
            cognito
                .admin_set_user_password()
                .user_pool_id(pool)
                .username(&name)
                .password("Correct-Horse-9")
                .permanent(true)
                .send()
                .await
                .unwrap();
        }))
        .await;
    }
    let mut events = Vec::new();
    let mut pages = cognito
        .list_users()
        .user_pool_id(pool)
        .limit(60)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for u in page.unwrap().users() {
            assert_eq!(u.user_status(), Some(&UserStatusType::Confirmed));
            let attrs: serde_json::Map<String, Value> = u
                .attributes()
                .iter()
                .map(|a| (a.name().to_owned(), json!(a.value())))
                .collect();
            let mut e = event("post-confirmation.json");
            e["userPoolId"] = json!(pool);
            e["userName"] = json!(u.username());
            e["request"]["userAttributes"] = Value::Object(attrs);
            events.push(e);
        }
    }
    assert_eq!(events.len(), n);
    events
}

async fn row_counts(db: &TestDb) -> (i64, i64) {
    let row = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*), count(DISTINCT cognito_user_id) FROM users",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Runs `events` through `environments`, each environment taking its share in order, `pace`
/// apart.
async fn burst(
    environments: &[Function],
    events: &[Value],
    pace: Duration,
) -> Vec<(Outcome, Duration)> {
    let per = events.len().div_ceil(environments.len());
    let lanes = environments
        .iter()
        .zip(events.chunks(per))
        .map(|(f, share)| async move {
            let mut out = Vec::new();
            for e in share {
                let inv = f.invoke_within(e, Duration::from_secs(5)).await;
                out.push((inv.outcome, inv.elapsed));
                tokio::time::sleep(pace).await;
            }
            out
        });
    join_all(lanes).await.into_iter().flatten().collect()
}

#[tokio::test]
async fn a_postgres_restart_during_a_burst_loses_and_duplicates_nobody() {
    let stack = Stack::private("pg").unwrap();
    let db = stack.fresh_database().await.unwrap();
    let moto = Stack::shared();
    let sdk = moto.sdk_config().await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool = aws::create_pool(&cognito).await;
    let events = confirmed_users(&cognito, &pool, 500).await;

    let mut environments = Vec::new();
    for _ in 0..10 {
        environments.push(
            Function::spawn(&function_binary("post-confirmation"), &db.url_env())
                .await
                .unwrap(),
        );
    }
    for f in &environments {
        f.wait_initialised(Duration::from_secs(20))
            .await
            .expect("initialised");
    }
    // Restart Postgres once, while the burst is under way, staying down a second in between
    // (a slower restart than the bare `pg_ctl` one, closer to a managed database's); time the
    // whole outage: stop, down, start, ready for connections.
    let restarter = {
        let stack = stack.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            tokio::task::spawn_blocking(move || {
                let down = Instant::now();
                stack.pg_stop();
                std::thread::sleep(Duration::from_secs(1));
                stack.pg_start();
                (down, Instant::now())
            })
            .await
            .unwrap()
        })
    };
    let started = Instant::now();
    // Paced so the burst spans some 2.5 s and the outage lands in its middle, whatever the
    // machine's speed.
    let results = burst(&environments, &events, Duration::from_millis(40)).await;
    let ended = Instant::now();
    let (down, up) = restarter.await.unwrap();
    let restart = up - down;
    assert!(
        down > started && up < ended,
        "the outage fell inside the burst: down at {:?}, up at {:?}, burst over at {:?}",
        down - started,
        up - started,
        ended - started
    );
    assert_eq!(results.len(), 500);
    let failed: Vec<_> = results
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Response(_)))
        .collect();
    for (outcome, elapsed) in &results {
        assert!(
            *elapsed < Duration::from_secs(5),
            "answered after {elapsed:?}: {outcome:?}"
        );
        match outcome {
            Outcome::Response(_) => {}
            Outcome::Error { error_type, .. } => {
                assert!(error_type.starts_with("Retryable."), "{outcome:?}")
            }
            other => panic!("neither success nor a clear error: {other:?}"),
        }
    }
    eprintln!(
        "burst: {} sign-ups in {:?}, {} failed during a restart of {restart:?}",
        results.len(),
        started.elapsed(),
        failed.len()
    );
    // The trigger rides out a restart inside its budget: one that completes within 2 s costs
    // nobody an error at sign-up. (A slower restart, on a loaded machine, may cost some; they
    // must then be clear retryable errors, checked above, and drift-check heals them below.)
    if restart < Duration::from_secs(2) {
        assert!(
            failed.is_empty(),
            "a restart of {restart:?} failed {} sign-ups: {:?}",
            failed.len(),
            failed.first()
        );
    }

    // What the trigger could not store, drift-check backfills.
    let env = function_env(
        &db,
        moto,
        &[("USER_POOL_ID", &pool), ("DRIFT_MODE", "remediate")],
    );
    let drift = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    let summary = drift.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["status"], "complete");
    assert_eq!(
        summary["counts"]["missing_user"].as_u64().unwrap() as usize,
        failed.len(),
        "{summary:#}"
    );
    assert_eq!(
        row_counts(&db).await,
        (500, 500),
        "every confirmed user exactly once"
    );
}

#[tokio::test]
async fn a_password_rotated_mid_burst_fails_no_invocation() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let role = format!("r_{}", uuid::Uuid::new_v4().simple());
    let (old, new) = (unique("old"), unique("new"));
    forbid(&old);
    forbid(&new);
    db.create_role(&role, &old).await.unwrap();
    let mut secret = db.rds_secret(&old);
    secret["username"] = json!(role);
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    let arn = aws::create_secret(&sm, &secret).await;
    let env = secret_env(&db, stack, &arn, &[]);
    let mut environments = Vec::new();
    for _ in 0..5 {
        environments.push(
            Function::spawn(&function_binary("post-confirmation"), &env)
                .await
                .unwrap(),
        );
    }
    let events: Vec<Value> = (0..200)
        .map(|i| signup(&format!("rot-{i}"), &format!("rot{i}")))
        .collect();

    // Every environment warm, with its connection open, before the rotation starts.
    for (i, f) in environments.iter().enumerate() {
        f.invoke(&signup(&format!("warm-{i}"), &format!("warm{i}")))
            .await
            .response();
    }

    // Secrets Manager's single-user rotation, step by step, while the burst runs: the new
    // version is staged AWSPENDING, the database gets the new password, live sessions are cut
    // (as an idle timeout or failover would), and only then does AWSPENDING become AWSCURRENT.
    let rotation = {
        let (sm, arn, admin_db) = (sm.clone(), arn.clone(), db.admin().await.unwrap());
        let (role, new) = (role.clone(), new.clone());
        let mut pending = secret.clone();
        pending["password"] = json!(new);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let staged = sm
                .put_secret_value()
                .secret_id(&arn)
                .secret_string(pending.to_string())
                .version_stages("AWSPENDING")
                .send()
                .await
                .unwrap();
            admin_db
                .batch_execute(&format!("ALTER ROLE {role} PASSWORD '{new}'"))
                .await
                .unwrap();
            admin_db
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    &[&role],
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let current = sm.describe_secret().secret_id(&arn).send().await.unwrap();
            let old_version = current.version_ids_to_stages().and_then(|m| {
                m.iter()
                    .find(|(_, s)| s.iter().any(|s| s == "AWSCURRENT"))
                    .map(|(v, _)| v.clone())
            });
            sm.update_secret_version_stage()
                .secret_id(&arn)
                .version_stage("AWSCURRENT")
                .move_to_version_id(staged.version_id().unwrap())
                .set_remove_from_version_id(old_version)
                .send()
                .await
                .unwrap();
        })
    };
    // 40 sign-ups per environment, 15 ms apart: the rotation lands in the middle.
    let results = burst(&environments, &events, Duration::from_millis(15)).await;
    rotation.await.unwrap();
    let failures: Vec<_> = results
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Response(_)))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(row_counts(&db).await, (205, 205));
    let refreshed = environments
        .iter()
        .filter(|f| {
            f.logs()
                .iter()
                .any(|l| l.contains("rejected the cached credentials"))
        })
        .count();
    assert_eq!(
        refreshed,
        environments.len(),
        "every warm environment felt the rotation"
    );
    let used_pending = environments
        .iter()
        .filter(|f| {
            f.logs()
                .iter()
                .any(|l| l.contains("\"stage\":\"AWSPENDING\""))
        })
        .count();
    assert!(
        used_pending >= 1,
        "someone logged in while the new password was still AWSPENDING"
    );
}

#[tokio::test]
async fn with_ec2_down_drift_check_records_a_failed_run_and_changes_nothing() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let sdk = stack.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let group = aws::create_group(&ec2).await;
    aws::open_port(&ec2, &group, "0.0.0.0/0", 5432).await;
    db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO managed_ingress_rules (security_group_id, owner, cidr) VALUES ($1, 'andrew', '34.201.17.5/32')",
            &[&group],
        )
        .await
        .unwrap();
    let before = aws::ingress(&ec2, &group).await;
    let tables = async || -> Vec<String> {
        db.connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT row_to_json(r)::text FROM managed_ingress_rules r \
                 UNION ALL SELECT row_to_json(u)::text FROM users u \
                 UNION ALL SELECT row_to_json(f)::text FROM drift_findings f",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let tables_before = tables().await;
    let pool = aws::create_pool(&aws_sdk_cognitoidentityprovider::Client::new(&sdk)).await;

    let mut env = db.url_env();
    env.push(("USER_POOL_ID".into(), pool));
    env.push(("DRIFT_MODE".into(), "remediate".into()));
    env.push(("AWS_ENDPOINT_URL_EC2".into(), "http://127.0.0.1:9".into()));
    env.push(("AWS_CALL_TIMEOUT_MS".into(), "1000".into()));
    let f = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    let inv = f.invoke_within(&json!({}), Duration::from_secs(20)).await;
    let (t, m) = inv.error();
    assert_eq!(t, "Retryable.Ec2", "{m}");
    let run = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT status, error FROM drift_runs", &[])
        .await
        .unwrap();
    assert_eq!(run.get::<_, String>(0), "failed");
    assert!(
        run.get::<_, Option<String>>(1)
            .unwrap()
            .contains("DescribeSecurityGroupRules")
    );
    assert_eq!(
        tables().await,
        tables_before,
        "no rule, user or finding written half-way"
    );
    // The function could not reach EC2 at all, so this holds by construction; it stays to
    // show the group as the run left it.
    assert_eq!(aws::ingress(&ec2, &group).await, before);
}
