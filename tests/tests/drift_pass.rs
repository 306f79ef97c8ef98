//! drift-check's passes over a user pool too big for one run: paced ListUsers, a pass spanning
//! many runs that finds every missing user once and orphans only at its end, a pass restarted
//! when Cognito refuses its token, a pass a killed process leaves behind continued by the next.
//! The real binary through the Lambda Runtime API, real Postgres, Cognito served by moto.

use std::{collections::BTreeMap, time::Duration};

use harness::{
    Function, Stack, TestDb, aws,
    fixtures::{function_env, unique},
    function_binary,
};
use serde_json::{Value, json};

struct Pool {
    db: TestDb,
    moto: Stack,
    id: String,
    /// Every user's sub, by index.
    subs: Vec<String>,
    /// The confirmed users given no row: lost sign-ups drift-check must find.
    lost: Vec<String>,
    /// Rows whose user is not in the pool.
    orphans: Vec<String>,
}

/// A pool of `n` users on `moto`: every `lost_every`-th one is confirmed with no row (a lost
/// sign-up), every other user has a row, confirmed or not, so a user a pass skipped would show
/// up as an orphan; and `orphans` rows with no user. Rows are an hour old: old enough to be
/// judged.
async fn pool(moto: Stack, n: usize, lost_every: usize, orphans: usize) -> Pool {
    let db = Stack::shared().fresh_database().await.unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&moto.sdk_config().await);
    let id = aws::create_pool(&cognito).await;
    let is_lost = |i: usize| i % lost_every == lost_every - 1;
    let subs = aws::create_users(&cognito, &id, "u", n, is_lost).await;
    let lost: Vec<String> = (0..n)
        .filter(|&i| is_lost(i))
        .map(|i| subs[i].clone())
        .collect();
    let with_rows: Vec<&String> = (0..n).filter(|&i| !is_lost(i)).map(|i| &subs[i]).collect();
    let orphans: Vec<String> = (0..orphans).map(|_| unique("gone")).collect();
    db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO users (cognito_user_id, email, display_name, handle, created_at) \
             SELECT s, s || '@example.com', s, 'h' || md5(s), now() - interval '1 hour' \
             FROM unnest($1::text[] || $2::text[]) AS s",
            &[&with_rows, &orphans],
        )
        .await
        .unwrap();
    Pool {
        db,
        moto,
        id,
        subs,
        lost,
        orphans,
    }
}

impl Pool {
    async fn start(&self, vars: &[(&str, &str)]) -> Function {
        let mut all = vec![("USER_POOL_ID", self.id.as_str())];
        all.extend_from_slice(vars);
        Function::spawn(
            &function_binary("drift-check"),
            &function_env(&self.db, &self.moto, &all),
        )
        .await
        .unwrap()
    }

    async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(sql, &[])
            .await
            .unwrap()
    }

    /// The resources of the findings of `kind` over the runs of pass `pass`, sorted.
    async fn findings(&self, pass: i64, kind: &str, action: Option<&str>) -> Vec<String> {
        let mut found: Vec<String> = self
            .db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT f.resource FROM drift_findings f JOIN drift_runs r ON r.id = f.run_id \
                 WHERE r.pass_id = $1 AND f.kind = $2 AND ($3::text IS NULL OR f.action = $3)",
                &[&pass, &kind, &action],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        found.sort();
        found
    }

    fn missing_resources(&self) -> Vec<String> {
        let mut r: Vec<String> = self
            .lost
            .iter()
            .map(|s| format!("{}/{s}", self.id))
            .collect();
        r.sort();
        r
    }

    fn orphan_resources(&self) -> Vec<String> {
        let mut r: Vec<String> = self.orphans.iter().map(|s| format!("users/{s}")).collect();
        r.sort();
        r
    }
}

/// The pass's row: (status, pages_read, users_seen, runs, finished).
async fn pass_row(p: &Pool, id: i64) -> (String, i64, i64, i32, bool) {
    let row =
        p.db.connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT status, pages_read, users_seen, runs, finished_at IS NOT NULL \
             FROM drift_user_passes WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))
}

fn pass_finished(summary: &Value) -> bool {
    summary["pass"]["finished"] == true
}

/// Invokes `functions` together, round after round, each invocation given `within`, until one
/// finishes the pass; returns every answer, in order. A round in which another run held the
/// pass (a dead run's lease that has yet to end) is followed by a short pause.
async fn until_the_pass_ends(functions: &[&Function], within: Duration) -> Vec<Value> {
    let mut answers = Vec::new();
    let event = json!({});
    for _ in 0..100 {
        let round = futures_util::future::join_all(
            functions.iter().map(|f| f.invoke_within(&event, within)),
        )
        .await;
        let round: Vec<Value> = round.iter().map(|inv| inv.response().clone()).collect();
        let done = round.iter().any(pass_finished);
        let held = round.iter().all(|s| s["pass"].is_null());
        answers.extend(round);
        if done {
            return answers;
        }
        if held {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    panic!("the pass did not end in 100 rounds: {answers:#?}");
}

/// 2,000 users in pages of 20, each invocation given 1.5 s: the pass takes many runs, from two
/// processes invoked together (overlapping runs), and still every lost sign-up is reported
/// exactly once, every user is seen exactly once, and orphans come only with the last page.
#[tokio::test]
async fn a_pass_spanning_many_runs_finds_every_missing_user_once_and_orphans_only_at_its_end() {
    let p = pool(Stack::shared().clone(), 2000, 50, 5).await;
    let vars = [
        ("DRIFT_PAGE_SIZE", "20"),
        ("DRIFT_LIST_USERS_PER_SECOND", "30"),
        ("DRIFT_DEADLINE_MARGIN_MS", "500"),
    ];
    let (a, b) = (p.start(&vars).await, p.start(&vars).await);
    let answers = until_the_pass_ends(&[&a, &b], Duration::from_millis(1500)).await;

    // A run of the other process may have begun the next pass once this one ended.
    let last = answers.iter().find(|s| pass_finished(s)).unwrap();
    let pass_id = last["pass"]["id"].as_i64().unwrap();
    let reading: Vec<&Value> = answers
        .iter()
        .filter(|s| s["pass"]["id"] == pass_id)
        .collect();
    assert!(reading.len() > 2, "the pass took many runs: {answers:#?}");
    for s in &reading {
        assert!(s["pass"]["restarted_from"].is_null());
        if !pass_finished(s) {
            assert_eq!(s["status"], "partial", "{s:#}");
            assert_eq!(
                s["counts"]["orphan_user"], 0,
                "no orphan before the end: {s:#}"
            );
        }
    }
    assert_eq!(last["status"], "complete");
    assert_eq!(last["counts"]["orphan_user"], 5, "{last:#}");

    // No page read twice, none skipped: the runs' shares add up to the pool.
    let pages: i64 = reading
        .iter()
        .map(|s| s["pass"]["pages_read"].as_i64().unwrap())
        .sum();
    let users: i64 = reading
        .iter()
        .map(|s| s["pass"]["users_seen"].as_i64().unwrap())
        .sum();
    assert_eq!((pages, users), (100, 2000));
    let runs = i32::try_from(reading.len()).unwrap();
    assert_eq!(
        pass_row(&p, pass_id).await,
        ("complete".into(), 100, 2000, runs, true)
    );
    let recorded = p
        .query(&format!(
            "SELECT sum(pages_read)::bigint, sum(users_seen)::bigint, count(*) FROM drift_runs WHERE pass_id = {pass_id}"
        ))
        .await;
    assert_eq!(
        (
            recorded[0].get::<_, i64>(0),
            recorded[0].get::<_, i64>(1),
            recorded[0].get::<_, i64>(2)
        ),
        (100, 2000, i64::from(runs)),
        "the runs table adds up to the pass"
    );

    // Each lost sign-up exactly once; a skipped user would be an orphan too.
    assert_eq!(
        p.findings(pass_id, "missing_user", None).await,
        p.missing_resources()
    );
    assert_eq!(
        p.findings(pass_id, "orphan_user", None).await,
        p.orphan_resources()
    );
    assert!(
        p.query(&format!(
            "SELECT 1 FROM drift_pass_subs WHERE pass_id = {pass_id}"
        ))
        .await
        .is_empty(),
        "a finished pass keeps no subs"
    );

    // The next run continues with the next pass.
    let next = a
        .invoke_within(&json!({}), Duration::from_millis(1500))
        .await;
    let next = next.response();
    assert!(next["pass"]["id"].as_i64().unwrap() > pass_id, "{next:#}");
}

/// A pass whose stored token Cognito no longer takes (expired; here a token moto cannot read)
/// is closed as `restarted`, and the run starts a new pass from the first page.
#[tokio::test]
async fn an_expired_token_restarts_the_pass_from_the_first_page() {
    let p = pool(Stack::shared().clone(), 300, 20, 2).await;
    let f = p
        .start(&[
            ("DRIFT_PAGE_SIZE", "10"),
            ("DRIFT_LIST_USERS_PER_SECOND", "10"),
            ("DRIFT_DEADLINE_MARGIN_MS", "500"),
        ])
        .await;
    let first = f
        .invoke_within(&json!({}), Duration::from_millis(1500))
        .await;
    let first = first.response().clone();
    assert_eq!(first["status"], "partial", "{first:#}");
    let old = first["pass"]["id"].as_i64().unwrap();
    assert!(
        first["pass"]["pages_read"].as_i64().unwrap() > 0,
        "{first:#}"
    );
    p.db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "UPDATE drift_user_passes SET next_token = 'eyJleHBpcmVkIjogdHJ1ZX0-not-a-token' WHERE id = $1",
            &[&old],
        )
        .await
        .unwrap();

    let second = f.invoke_within(&json!({}), Duration::from_secs(30)).await;
    let second = second.response().clone();
    assert_eq!(second["status"], "complete", "{second:#}");
    assert_eq!(second["pass"]["restarted_from"], old, "{second:#}");
    assert!(pass_finished(&second));
    let new = second["pass"]["id"].as_i64().unwrap();
    assert_ne!(new, old);
    // From the first page: the new pass read the whole pool in this one run.
    assert_eq!(
        pass_row(&p, new).await,
        ("complete".into(), 30, 300, 1, true)
    );
    let (status, ..) = pass_row(&p, old).await;
    assert_eq!(status, "restarted");
    let kept: i64 = p
        .query(&format!(
            "SELECT count(*) FROM drift_pass_subs WHERE pass_id = {old}"
        ))
        .await[0]
        .get(0);
    assert_eq!(kept, 0, "the abandoned pass's subs are dropped");
    // The new pass reports every lost sign-up once (the old one had reported only some) and
    // the orphans, which the old pass never did.
    let second_run = second["run_id"].as_str().unwrap();
    let mut in_new: Vec<String> = p
        .db
        .connect_as_app()
        .await
        .unwrap()
        .query(
            "SELECT resource FROM drift_findings WHERE run_id = $1::text::uuid AND kind = 'missing_user'",
            &[&second_run],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    in_new.sort();
    assert_eq!(in_new, p.missing_resources());
    assert_eq!(
        p.findings(new, "orphan_user", None).await,
        p.orphan_resources()
    );
    assert!(p.findings(old, "orphan_user", None).await.is_empty());
}

/// A process killed in the middle of a remediating pass (Lambda timing out, an out-of-memory
/// kill): the next process continues the pass from the last page it finished; every lost
/// sign-up is backfilled and reported exactly once, none inserted behind the pass's back.
#[tokio::test]
async fn a_pass_left_by_a_killed_process_is_continued_by_the_next_with_nothing_lost_or_repeated() {
    let p = pool(Stack::shared().clone(), 600, 20, 0).await;
    let vars = [
        ("DRIFT_MODE", "remediate"),
        ("DRIFT_PAGE_SIZE", "10"),
        ("DRIFT_LIST_USERS_PER_SECOND", "10"),
        ("DRIFT_DEADLINE_MARGIN_MS", "500"),
    ];
    let doomed = p.start(&vars).await;
    let pid = doomed.pid().unwrap();
    let kill_mid_pass = async {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let read = p
                .query("SELECT coalesce(max(pages_read), 0) FROM drift_user_passes")
                .await[0]
                .get::<_, i64>(0);
            if read >= 5 {
                let killed = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(killed.success());
                return read;
            }
        }
        panic!("the pass never got going");
    };
    let event = json!({});
    let (inv, read_before_kill) = tokio::join!(
        doomed.invoke_within(&event, Duration::from_secs(4)),
        kill_mid_pass
    );
    assert!(
        doomed.exit_status().is_some(),
        "the process died mid-run: {:?}",
        inv.outcome
    );
    let open = p
        .query("SELECT id, pages_read FROM drift_user_passes WHERE status = 'open'")
        .await;
    assert_eq!(open.len(), 1, "the pass is still open");
    assert!(open[0].get::<_, i64>(1) >= read_before_kill);
    assert!(open[0].get::<_, i64>(1) < 60, "killed before the end");

    let next = p.start(&vars).await;
    let answers = until_the_pass_ends(&[&next], Duration::from_secs(3)).await;
    let pass_id: i64 = open[0].get(0);
    let last = answers.last().unwrap();
    assert_eq!(last["pass"]["id"], pass_id, "the same pass, continued");
    assert_eq!(
        pass_row(&p, pass_id).await,
        (
            "complete".into(),
            60,
            600,
            i32::try_from(answers.iter().filter(|s| !s["pass"].is_null()).count()).unwrap() + 1,
            true
        )
    );
    assert_eq!(
        p.findings(pass_id, "missing_user", Some("backfilled"))
            .await,
        p.missing_resources(),
        "each lost sign-up backfilled and reported once"
    );
    assert_eq!(
        p.findings(pass_id, "missing_user", None).await,
        p.missing_resources(),
        "no finding repeated (a re-read page would say \"inserted meanwhile\")"
    );
    let with_rows: i64 = p.query("SELECT count(*) FROM users").await[0].get(0);
    assert_eq!(with_rows, i64::try_from(p.subs.len()).unwrap());
    assert!(p.findings(pass_id, "orphan_user", None).await.is_empty());
}

/// The most calls that fall in one second, by the second each was signed in.
fn most_in_one_second(dates: &[String]) -> usize {
    let mut per_second: BTreeMap<&str, usize> = BTreeMap::new();
    for d in dates {
        *per_second.entry(d.as_str()).or_default() += 1;
    }
    per_second.into_values().max().unwrap_or(0)
}

#[test]
fn the_per_second_count_fires_on_a_burst() {
    let at = |s: &str| format!("20261124T1521{s}Z");
    let paced: Vec<String> = ["00", "00", "01", "01", "02"].map(at).to_vec();
    assert_eq!(most_in_one_second(&paced), 2);
    let burst: Vec<String> = ["00", "01", "01", "01", "02"].map(at).to_vec();
    assert_eq!(most_in_one_second(&burst), 3);
}

/// At a ceiling of 2 calls a second (calls at least 500 ms apart), no second of moto's request
/// recorder holds more than 3 ListUsers calls; the pass reads every page all the same. The
/// recorder dates a call by when it was signed, in whole seconds, and a signature can lag the
/// call's start (the first call also resolves the SDK's credentials): four calls span at least
/// 1.5 s, so they fit in one second only if one signature lagged another by over 500 ms, while
/// a pacer that let calls through unspaced puts all twenty in a second or two. moto of its
/// own: the recorder sees every client.
#[tokio::test]
async fn list_users_keeps_under_its_ceiling_in_moto_s_request_recorder() {
    let moto = Stack::private("moto").unwrap();
    let p = pool(moto.clone(), 200, 20, 0).await;
    let f = p
        .start(&[
            ("DRIFT_PAGE_SIZE", "10"),
            ("DRIFT_LIST_USERS_PER_SECOND", "2"),
        ])
        .await;
    f.wait_initialised(Duration::from_secs(10)).await;
    moto.start_recording();
    let summary = f.invoke_within(&json!({}), Duration::from_secs(60)).await;
    let summary = summary.response().clone();
    let calls = moto.recorded_calls();
    assert!(pass_finished(&summary), "{summary:#}");
    let list_users: Vec<String> = calls
        .iter()
        .filter(|c| c.action == "ListUsers" && c.body.contains(&p.id))
        .map(|c| c.amz_date.clone())
        .collect();
    assert_eq!(list_users.len(), 20, "every page once: {list_users:?}");
    assert!(list_users.iter().all(|d| d.len() == 16), "{list_users:?}");
    let most = most_in_one_second(&list_users);
    assert!(
        most <= 3,
        "{most} ListUsers calls in one second: {list_users:?}"
    );
}

/// A pass-through to moto that answers the first `throttled` ListUsers calls as Cognito does
/// when the account's `UserList` quota is spent; returns its endpoint and the count of calls
/// it throttled. moto cannot be asked to throttle; everything else is moto's own answer.
async fn throttling_proxy(
    moto: String,
    throttled: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::{Request, Response, service::service_fn};
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let upstream: hyper::Uri = moto.parse().unwrap();
    let authority = upstream.authority().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (count, authority) = (counted.clone(), authority.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (count, authority) = (count.clone(), authority.clone());
                    async move {
                        let is_list_users = req
                            .headers()
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|t| t.ends_with(".ListUsers"));
                        if is_list_users && count.fetch_add(1, Ordering::SeqCst) < throttled {
                            let body = r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#;
                            return Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(400)
                                    .header("content-type", "application/x-amz-json-1.1")
                                    .header("x-amzn-errortype", "TooManyRequestsException")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            );
                        }
                        if is_list_users {
                            count.fetch_sub(1, Ordering::SeqCst);
                        }
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let stream = tokio::net::TcpStream::connect(authority.as_str())
                            .await
                            .unwrap();
                        let (mut sender, conn) =
                            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                        tokio::spawn(conn);
                        let forwarded = Request::from_parts(parts, Full::new(body));
                        let (parts, body) = sender.send_request(forwarded).await?.into_parts();
                        let body = body.collect().await?.to_bytes();
                        Ok(Response::from_parts(parts, Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (endpoint, count)
}

/// Cognito throttling ListUsers past the SDK's own retries does not fail the run: drift-check
/// waits, slows down, and reads the same page again; the pass completes with every lost
/// sign-up.
#[tokio::test]
async fn throttled_list_users_is_waited_out_not_a_failed_run() {
    let p = pool(Stack::shared().clone(), 100, 20, 1).await;
    // More than the SDK's three attempts: drift-check's own backoff must take over.
    let (proxy, throttled) = throttling_proxy(p.moto.aws_endpoint.clone(), 4).await;
    let mut env = function_env(
        &p.db,
        &p.moto,
        &[("USER_POOL_ID", p.id.as_str()), ("DRIFT_PAGE_SIZE", "50")],
    );
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy));
    let f = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    let summary = f.invoke_within(&json!({}), Duration::from_secs(60)).await;
    let summary = summary.response().clone();
    assert_eq!(
        throttled.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "the proxy throttled four calls"
    );
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert!(pass_finished(&summary));
    assert_eq!(summary["pass"]["pages_read"], 2);
    let pass_id = summary["pass"]["id"].as_i64().unwrap();
    assert_eq!(
        p.findings(pass_id, "missing_user", None).await,
        p.missing_resources()
    );
    assert_eq!(
        p.findings(pass_id, "orphan_user", None).await,
        p.orphan_resources()
    );
    let logs = f.logs();
    assert!(
        logs.iter().any(|l| l.contains("ListUsers throttled")),
        "the backoff took over from the SDK: {logs:#?}"
    );
}
