//! drift-check's users half with the listing outside the VPC: the lister (the drift-check
//! binary with `DRIFT_RUNS_AS=lister`, no database settings at all) lists a moto pool and hands
//! the users to the real drift-check (`DRIFT_USERS_FROM=lister`) through a loopback Lambda
//! Invoke API, in chunks staged in Postgres. A multi-chunk listing backfills a lost sign-up
//! exactly as drift-check's own listing does; a listing that breaks off changes nothing and
//! the run says so; a hostile or oversized hand-over is refused.

use std::sync::Arc;

use harness::{Function, function_binary};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
#[path = "common/invoke_api.rs"]
mod invoke_api;
use drift::{World, counts};
use invoke_api::{InvokeApi, Target};

/// The name the lister invokes drift-check by.
const CHECK: &str = "drift-check";

/// The same pool and rows in every world: alice has her row, bob's sign-up was lost, carol
/// never confirmed, five more users have rows (so the listing spans chunks), and one row has
/// no user (an orphan once the whole pool is read).
async fn populate(w: &World) -> String {
    let alice = w.user("alice", true).await;
    w.add_row(&alice, "alice").await;
    let bob = w.user("bob", true).await;
    w.user("carol", false).await;
    for name in ["dan", "erin", "fay", "gus", "hal"] {
        let sub = w.user(name, true).await;
        w.add_row(&sub, name).await;
    }
    w.add_row("0b5e7a51-dead-4bee-8a0a-000000000000", "ghost")
        .await;
    bob
}

/// drift-check as deployed behind the lister, and the lister pointed at it through `api`.
struct Pair {
    check: Arc<Function>,
    lister: Function,
    api: InvokeApi,
}

async fn pair(w: &World, mode: &str, handover_bytes: &str) -> Pair {
    pair_with(w, mode, handover_bytes, "20000", "10").await
}

/// [`pair`] with the lister's time kept for the last call and its `ListUsers` rate.
async fn pair_with(
    w: &World,
    mode: &str,
    handover_bytes: &str,
    final_call_ms: &str,
    per_second: &str,
) -> Pair {
    pair_with_env(w, mode, handover_bytes, final_call_ms, per_second, &[]).await
}

/// [`pair_with`] with more of the lister's variables (these win).
async fn pair_with_env(
    w: &World,
    mode: &str,
    handover_bytes: &str,
    final_call_ms: &str,
    per_second: &str,
    lister_env: &[(&str, &str)],
) -> Pair {
    let check = Arc::new(
        w.start(&[
            ("DRIFT_MODE", mode),
            ("DRIFT_USERS_FROM", "lister"),
            ("DRIFT_PAGE_SIZE", "2"),
        ])
        .await,
    );
    let api = InvokeApi::start().await.unwrap();
    api.route(CHECK, check.clone());
    let mut env = w.moto.aws_env();
    env.extend(
        [
            ("DRIFT_RUNS_AS", "lister"),
            ("USER_POOL_ID", w.pool.as_str()),
            ("DRIFT_CHECK_FUNCTION", CHECK),
            ("DRIFT_PAGE_SIZE", "2"),
            ("DRIFT_HANDOVER_BYTES", handover_bytes),
            ("DRIFT_FINAL_CALL_MS", final_call_ms),
            ("DRIFT_LIST_USERS_PER_SECOND", per_second),
            ("DRIFT_HANDOVER_KEY_SECRET_ARN", w.handover_key_arn.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env.push(("AWS_ENDPOINT_URL_LAMBDA".into(), api.endpoint()));
    env.extend(
        lister_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    assert!(
        !env.iter()
            .any(|(k, _)| k.starts_with("DATABASE") || k.starts_with("DB_")),
        "the lister is given nothing of the database"
    );
    let lister = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    Pair { check, lister, api }
}

/// The hand-over a call's payload carries (the signed JSON text), or `null`.
fn op(body: &Value) -> Value {
    body["hand_over"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

fn ops(api: &InvokeApi) -> Vec<String> {
    api.calls()
        .iter()
        .map(|c| op(&c.body)["op"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn one(w: &World, sql: &str) -> Vec<Value> {
    let client = w.db.connect_as_app().await.unwrap();
    client
        .query(&format!("SELECT to_jsonb(t) FROM ({sql}) t"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_multi_chunk_listing_backfills_a_lost_user_exactly_as_the_in_vpc_listing_did() {
    // The old path: drift-check lists the pool itself.
    let before = World::shared().await;
    populate(&before).await;
    let own = before
        .start(&[("DRIFT_MODE", "remediate"), ("DRIFT_PAGE_SIZE", "2")])
        .await;
    let old = own
        .invoke(&json!({"mode": "remediate"}))
        .await
        .response()
        .clone();

    let w = World::shared().await;
    let bob = populate(&w).await;
    let p = pair(&w, "remediate", "300").await;
    let inv = p
        .lister
        .invoke(&json!({"mode": "remediate", "trigger": "schedule"}))
        .await;
    let summary = inv.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(summary["trigger"], "lister:direct:schedule", "{summary:#}");

    // Eight users at under 300 bytes a chunk: many chunks, each one call, in order.
    let ops = ops(&p.api);
    let chunks = ops.iter().filter(|o| *o == "chunk").count();
    assert!(chunks >= 3, "{ops:?}");
    assert_eq!(ops.first().map(String::as_str), Some("begin"), "{ops:?}");
    assert_eq!(ops.last().map(String::as_str), Some("complete"), "{ops:?}");
    assert!(p.api.calls().iter().all(|c| c.status == 200));

    // The same findings and actions, and the same rows, as the old path.
    assert_eq!(counts(&summary), counts(&old), "{summary:#}\n{old:#}");
    assert_eq!(counts(&summary), [0, 0, 0, 1, 1]);
    assert_eq!(summary["actions"], old["actions"]);
    assert_eq!(summary["actions"]["backfilled"], 1, "{summary:#}");
    let rows = |rows: Vec<(String, String, String)>| -> Vec<(String, String)> {
        rows.into_iter().map(|(_, h, n)| (h, n)).collect()
    };
    assert_eq!(rows(w.user_rows().await), rows(before.user_rows().await));
    assert!(w.user_rows().await.iter().any(|r| r.0 == bob));

    // The listing is recorded as compared by that run, and its chunks are gone.
    let listing = one(
        &w,
        "SELECT status, chunks, users, compared_by::text FROM drift_listings",
    )
    .await;
    assert_eq!(listing.len(), 1, "{listing:?}");
    assert_eq!(listing[0]["status"], "complete");
    assert_eq!(listing[0]["chunks"].as_i64(), Some(chunks as i64));
    assert_eq!(listing[0]["users"], 8);
    assert_eq!(listing[0]["compared_by"], summary["run_id"]);
    assert!(
        one(&w, "SELECT * FROM drift_listing_chunks")
            .await
            .is_empty()
    );
    drop(p.check);
}

/// The hand-over of the second chunk fails (a planted `ServiceException` on every attempt):
/// the listing broke off after one chunk. drift-check compares nothing of it: bob is not
/// backfilled, and the ghost row, whose user no chunk listed, is not reported as an orphan.
/// The run is recorded as partial with the reason, and the lister fails.
#[tokio::test]
async fn a_listing_that_breaks_off_changes_nothing_and_reports_the_incomplete_run() {
    let w = World::shared().await;
    populate(&w).await;
    let rows_before = w.user_rows().await;
    let p = pair(&w, "remediate", "300").await;
    p.api
        .fail_when(|_, body| op(body)["op"] == "chunk" && op(body)["seq"] == 1);
    let inv = p.lister.invoke(&json!({"mode": "remediate"})).await;
    let (error_type, message) = inv.error();
    assert_eq!(error_type, "Retryable.ListingBrokenOff", "{message}");
    assert!(message.contains("ServiceException"), "{message}");

    assert_eq!(w.user_rows().await, rows_before, "nothing was written");
    let runs = one(&w, "SELECT status, error, counts FROM drift_runs").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "partial", "{runs:?}");
    let error = runs[0]["error"].as_str().unwrap();
    assert!(error.contains("the user listing broke off"), "{error}");
    assert_eq!(runs[0]["counts"]["missing_user"], 0, "{runs:?}");
    assert_eq!(runs[0]["counts"]["orphan_user"], 0, "{runs:?}");
    assert!(one(&w, "SELECT * FROM drift_findings").await.is_empty());

    let listing = one(&w, "SELECT status, chunks, reason FROM drift_listings").await;
    assert_eq!(listing[0]["status"], "broken_off", "{listing:?}");
    assert_eq!(listing[0]["chunks"], 1, "{listing:?}");
    assert!(
        one(&w, "SELECT * FROM drift_listing_chunks")
            .await
            .is_empty()
    );
    // No pass over the pool was advanced or finished by it.
    assert!(
        one(
            &w,
            "SELECT id FROM drift_user_passes WHERE pages_read > 0 OR status <> 'open'"
        )
        .await
        .is_empty()
    );
    assert_eq!(ops(&p.api).last().map(String::as_str), Some("broken_off"));

    // What scripts/sam-local sends the lister: a CloudTrail change, drift-check's alone, is
    // refused before anything is listed or invoked.
    let calls = p.api.calls().len();
    let refused = p
        .lister
        .invoke(&harness::event("drift-check-lister-cloudtrail.json"))
        .await;
    assert_eq!(refused.error().0, "Permanent.BadRequest");
    assert_eq!(p.api.calls().len(), calls);
}

/// drift-check answers every call late: each hand-over and the last call take longer than
/// half the time the lister gives them (the SDK's per-attempt timeout once was half, and it
/// retried an attempt it had given up on while drift-check was still running it). Each call
/// is sent once, never again, and the lister waits for drift-check's answer: the run compares
/// the whole listing.
#[tokio::test]
async fn a_slow_drift_check_is_invoked_once_per_call_and_its_answer_awaited() {
    let w = World::shared().await;
    let bob = populate(&w).await;
    // 10 s kept for the last call, 8 s for each hand-over; drift-check answers after 6 s and 5 s.
    let p = pair_with_env(
        &w,
        "remediate",
        "1048576",
        "10000",
        "10",
        &[("DRIFT_HANDOVER_TIMEOUT_MS", "8000")],
    )
    .await;
    let slow = |secs| Target::Delayed {
        delay: std::time::Duration::from_secs(secs),
        then: Box::new(Target::Function {
            function: p.check.clone(),
            timeout: std::time::Duration::from_secs(30),
        }),
    };
    // Eight users fit one chunk: begin, chunk, complete.
    p.api
        .serve(CHECK, Target::sequence(vec![slow(5), slow(5), slow(6)]));

    let inv = p.lister.invoke(&json!({"mode": "remediate"})).await;
    let summary = inv.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(ops(&p.api), ["begin", "chunk", "complete"]);
    assert!(p.api.calls().iter().all(|c| c.status == 200));
    assert_eq!(summary["actions"]["backfilled"], 1, "{summary:#}");
    assert!(w.user_rows().await.iter().any(|r| r.0 == bob));
}

/// Whoever may invoke drift-check may send anything: a listing of another pool, a chunk for a
/// listing that does not exist or out of turn, a chunk past the limits, counts that do not
/// match what arrived, a hand-over to a drift-check that lists the pool itself. Each is
/// refused by name, nothing is written to `users`, and a listing whose counts disagree is
/// closed as broken off, never compared.
#[tokio::test]
async fn a_hostile_or_oversized_hand_over_is_refused() {
    let w = World::shared().await;
    populate(&w).await;
    let rows_before = w.user_rows().await;
    let check = w
        .start(&[("DRIFT_MODE", "remediate"), ("DRIFT_USERS_FROM", "lister")])
        .await;
    // Signed with the stack's key: what follows is refused for what it says.
    let hand = |op: Value| w.seal(&json!({"hand_over": op}));
    let now = drift_check::listing::unix_now();
    let refused = |inv: &harness::Invocation, what: &str| {
        let (t, m) = inv.error();
        assert_eq!(t, "Permanent.HandOver", "{what}: {m}");
        m.to_owned()
    };

    let foreign = check
        .invoke(&hand(
            json!({"op": "begin", "pool": "us-east-1_other", "issued_at": now}),
        ))
        .await;
    assert!(refused(&foreign, "foreign pool").contains("us-east-1_other"));

    let unknown = "0b5e7a51-dead-4bee-8a0a-000000000001";
    let inv = check
        .invoke(&hand(
            json!({"op": "chunk", "listing": unknown, "seq": 0, "users": []}),
        ))
        .await;
    assert!(refused(&inv, "unknown listing").contains("no listing"));

    let begun = check
        .invoke(&hand(
            json!({"op": "begin", "pool": w.pool, "issued_at": now}),
        ))
        .await;
    let listing = begun.response()["listing"].as_str().unwrap().to_owned();
    let user = |sub: &str, value: &str| {
        json!({"username": sub, "status": "CONFIRMED",
               "attributes": {"sub": sub, "email": format!("{sub}@example.com"),
                              "email_verified": "true", "name": value}})
    };
    let chunk = |seq: i32, users: Value| {
        hand(json!({"op": "chunk", "listing": listing, "seq": seq, "users": users}))
    };
    let out_of_turn = check.invoke(&chunk(3, json!([]))).await;
    assert!(refused(&out_of_turn, "gap").contains("chunk 3 arrived where chunk 0"));

    // 9 KiB in one attribute: past what Cognito holds.
    let huge = check
        .invoke(&chunk(0, json!([user("forged-1", &"x".repeat(9 * 1024))])))
        .await;
    assert!(refused(&huge, "huge value").contains("too large"));
    // 600 users of 4 KiB: 2.4 MB, over the chunk limit (yet under Lambda's 6 MB).
    let many: Vec<Value> = (0..600)
        .map(|i| user(&format!("forged-{i}"), &"y".repeat(4 * 1024)))
        .collect();
    let big = check.invoke(&chunk(0, Value::Array(many))).await;
    assert!(refused(&big, "big chunk").contains("too large"));

    // A forged chunk that passes the limits, then counts that do not match it.
    let staged = check
        .invoke(&chunk(0, json!([user("forged-a", "A")])))
        .await;
    assert_eq!(staged.response()["chunks"], 1);
    let complete = check
        .invoke(&hand(
            json!({"op": "complete", "listing": listing, "chunks": 1, "users": 7}),
        ))
        .await;
    assert!(refused(&complete, "counts").contains("counted"));
    let closed = one(&w, "SELECT status, reason FROM drift_listings").await;
    assert_eq!(closed[0]["status"], "broken_off", "{closed:?}");
    assert!(
        one(&w, "SELECT * FROM drift_listing_chunks")
            .await
            .is_empty()
    );
    assert!(
        one(&w, "SELECT * FROM drift_runs").await.is_empty(),
        "no run was started"
    );

    // A drift-check that lists the pool itself takes no hand-over at all.
    let own = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let inv = own
        .invoke(&hand(
            json!({"op": "begin", "pool": w.pool, "issued_at": now}),
        ))
        .await;
    assert!(refused(&inv, "not expected").contains("DRIFT_USERS_FROM"));

    assert_eq!(w.user_rows().await, rows_before);
}

/// A pool too large for one run's listing: the lister runs out of time, hands over every page
/// it read and suspends the listing at Cognito's next token; drift-check checks the rules half
/// (its run is partial: nothing compared, no orphan, nothing backfilled). The next runs go on
/// from that token, and the run that reads the last page compares the whole listing: the lost
/// user is backfilled and the orphan reported, as if one run had read it all.
#[tokio::test]
async fn a_listing_too_long_for_one_run_is_continued_by_the_next_runs() {
    let w = World::shared().await;
    let bob = populate(&w).await;
    let rows_before = w.user_rows().await;
    // One page a run: a call every 10 s, and 5 s of listing (30 s less 25 s for the last call).
    let p = pair_with(&w, "remediate", "300", "25000", "0.1").await;
    let mut runs = Vec::new();
    while runs.len() < 8 {
        let summary = p
            .lister
            .invoke(&json!({"mode": "remediate"}))
            .await
            .response()
            .clone();
        let done = summary["status"] == "complete";
        if !done {
            assert_eq!(summary["status"], "partial", "{summary:#}");
            assert_eq!(counts(&summary), [0, 0, 0, 0, 0], "{summary:#}");
            assert_eq!(
                w.user_rows().await,
                rows_before,
                "nothing written before the end"
            );
        }
        runs.push(summary);
        if done {
            break;
        }
    }
    // Eight users, two a page: at least four runs, the last one complete.
    assert!(runs.len() >= 4, "{runs:#?}");
    let last = runs.last().unwrap();
    assert_eq!(last["status"], "complete", "{runs:#?}");
    assert_eq!(counts(last), [0, 0, 0, 1, 1], "{last:#}");
    assert_eq!(last["actions"]["backfilled"], 1, "{last:#}");
    assert!(w.user_rows().await.iter().any(|r| r.0 == bob));
    let listing = one(&w, "SELECT status, users, next_token FROM drift_listings").await;
    assert_eq!(listing.len(), 1, "one listing, continued: {listing:?}");
    assert_eq!(listing[0]["status"], "complete");
    assert_eq!(listing[0]["users"], 8);
    let ops = ops(&p.api);
    assert_eq!(
        ops.iter().filter(|o| *o == "suspend").count(),
        runs.len() - 1,
        "{ops:?}"
    );
}

/// Issue: the hand-over was unauthenticated. Whoever may invoke drift-check forges a listing
/// while the lister's real one is being staged: a `begin` and `chunk`s in the old unsigned
/// shape, the signed shape without a signature, signed with another key, a genuine `begin`
/// replayed an hour later, and a `chunk`, `complete` and `broken_off` aimed at the real
/// listing under a wrong signature. Each is refused (`Permanent.HandOver`) before anything
/// reaches the database: no `users` row is written, no run starts, and the real listing is
/// neither superseded nor closed: it takes its next signed chunk.
#[tokio::test]
async fn a_forged_unsigned_or_wrongly_signed_hand_over_is_refused_and_changes_nothing() {
    let w = World::shared().await;
    populate(&w).await;
    let rows_before = w.user_rows().await;
    let check = w
        .start(&[("DRIFT_MODE", "remediate"), ("DRIFT_USERS_FROM", "lister")])
        .await;
    let now = drift_check::listing::unix_now();
    let user = |sub: &str| {
        json!({"username": sub, "status": "CONFIRMED",
               "attributes": {"sub": sub, "email": format!("{sub}@example.com"),
                              "email_verified": "true", "name": "Forged"}})
    };
    // The lister's real listing, one chunk staged.
    let real = check
        .invoke(&w.seal(&json!({"hand_over":
            {"op": "begin", "pool": w.pool, "issued_at": now}})))
        .await;
    let listing = real.response()["listing"].as_str().unwrap().to_owned();
    let staged = check
        .invoke(&w.seal(
            &json!({"hand_over": {"op": "chunk", "listing": listing, "seq": 0,
            "users": [user("0b5e7a51-dead-4bee-8a0a-00000000aaaa")]}}),
        ))
        .await;
    assert_eq!(staged.response()["chunks"], 1, "{:#}", staged.response());

    let forged_key = shared::signing::SigningKey::new(vec![b'k'; 64]).unwrap();
    let wrong = |op: Value| drift_check::listing::seal(&forged_key, &json!({"hand_over": op}));
    let begin = json!({"op": "begin", "pool": w.pool, "issued_at": now});
    let chunk = json!({"op": "chunk", "listing": listing, "seq": 1,
        "users": [user("0b5e7a51-dead-4bee-8a0a-00000000bbbb")]});
    let complete = json!({"op": "complete", "listing": listing, "chunks": 1, "users": 1});
    let forgeries = [
        ("unsigned begin", json!({"hand_over": begin})),
        ("unsigned chunk", json!({"hand_over": chunk})),
        ("unsigned complete", json!({"hand_over": complete})),
        (
            "begin without a signature",
            json!({"hand_over": begin.to_string()}),
        ),
        ("begin under another key", wrong(begin.clone())),
        ("chunk under another key", wrong(chunk.clone())),
        ("complete under another key", wrong(complete.clone())),
        (
            "broken_off under another key",
            wrong(json!({"op": "broken_off", "listing": listing, "reason": "x"})),
        ),
        (
            "a genuine begin replayed an hour later",
            w.seal(&json!({"hand_over":
                {"op": "begin", "pool": w.pool, "issued_at": now - 3600}})),
        ),
        ("a genuine chunk with its text changed", {
            let mut sealed = w.seal(&json!({"hand_over": chunk}));
            let text = sealed["hand_over"]
                .as_str()
                .unwrap()
                .replace("bbbb", "cccc");
            sealed["hand_over"] = json!(text);
            sealed
        }),
    ];
    for (what, payload) in forgeries {
        let inv = check.invoke(&payload).await;
        let (t, m) = inv.error();
        assert_eq!(t, "Permanent.HandOver", "{what}: {m}");
    }

    assert_eq!(w.user_rows().await, rows_before, "no row written");
    assert!(
        one(&w, "SELECT * FROM drift_runs").await.is_empty(),
        "no run"
    );
    let listings = one(&w, "SELECT id::text, status, chunks FROM drift_listings").await;
    assert_eq!(listings.len(), 1, "nothing begun: {listings:?}");
    assert_eq!(listings[0]["id"], listing.as_str());
    assert_eq!(
        listings[0]["status"], "staging",
        "not superseded: {listings:?}"
    );
    assert_eq!(listings[0]["chunks"], 1, "{listings:?}");
    // The real listing goes on.
    let next = check
        .invoke(&w.seal(
            &json!({"hand_over": {"op": "chunk", "listing": listing, "seq": 1,
            "users": [user("0b5e7a51-dead-4bee-8a0a-00000000dddd")]}}),
        ))
        .await;
    assert_eq!(next.response()["chunks"], 2, "{:#}", next.response());
}

/// The listing cannot begin: drift-check fails the `begin` (a planted `ServiceException`), or
/// the lister cannot read its hand-over key. The tick still runs the rules half: the lister
/// asks drift-check for a run without a listing, which revokes a developer's rule past its
/// lifetime on time; the lister then fails (`HandOver`), so its errors alarm says so.
#[tokio::test]
async fn a_listing_that_cannot_begin_still_runs_the_rules_half() {
    let w = World::shared().await;
    populate(&w).await;
    let group = w.group().await;
    let cidr = "34.201.17.5/32";
    let id = w.open(&group, cidr, 5432).await;
    let row = harness::fixtures::RuleRow {
        owner: "andrew",
        cidr: Some(cidr),
        aws_rule_id: Some(&id),
        allow_unverified: true,
        ..Default::default()
    };
    harness::fixtures::add_managed_rule(&w.db, &group, row).await;
    w.sql("UPDATE managed_ingress_rules SET expires_at = now() - interval '1 minute'")
        .await;
    let rows_before = w.user_rows().await;

    let p = pair(&w, "report", "300").await;
    p.api.fail_when(|_, body| op(body)["op"] == "begin");
    let inv = p.lister.invoke(&json!({"mode": "report"})).await;
    let (error_type, message) = inv.error();
    assert_eq!(error_type, "Retryable.HandOver", "{message}");
    assert!(message.contains("ServiceException"), "{message}");
    let calls = p.api.calls();
    assert_eq!(ops(&p.api), ["begin", "?"], "{calls:?}");
    let trigger = calls[1].body["trigger"].as_str().unwrap_or_default();
    assert!(trigger.starts_with("lister:"), "{:?}", calls[1].body);
    assert!(calls[1].body.get("hand_over").is_none());
    let runs = one(&w, "SELECT status, trigger FROM drift_runs").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "complete", "{runs:?}");
    assert!(
        w.ingress(&group).await.iter().all(|(c, _)| c != cidr),
        "the lapsed rule is revoked"
    );
    assert_eq!(
        w.user_rows().await,
        rows_before,
        "nothing of the users half"
    );
    assert!(one(&w, "SELECT * FROM drift_listings").await.is_empty());

    // A key the lister cannot read: no hand-over at all, the rules half's run all the same.
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-key-AbCdEf";
    let p = pair_with_env(
        &w,
        "report",
        "300",
        "20000",
        "10",
        &[("DRIFT_HANDOVER_KEY_SECRET_ARN", missing)],
    )
    .await;
    let inv = p.lister.invoke(&json!({"mode": "report"})).await;
    let (error_type, message) = inv.error();
    assert_eq!(error_type, "Retryable.HandOver", "{message}");
    assert!(message.contains("hand-over key"), "{message}");
    assert_eq!(ops(&p.api), ["?"]);
    assert_eq!(one(&w, "SELECT id FROM drift_runs").await.len(), 2);
}

/// A new listing supersedes the pool's listing still staging (its chunks dropped), leaves a
/// complete one's chunks alone (a run may be comparing it), and deletes the pool's listings
/// finished more than two weeks ago: the table does not grow with every tick.
#[tokio::test]
async fn a_new_listing_drops_only_what_it_supersedes_and_what_is_past_retention() {
    let w = World::shared().await;
    let check = w.start(&[("DRIFT_USERS_FROM", "lister")]).await;
    let pool = w.pool.as_str();
    w.sql(&format!(
        "INSERT INTO drift_listings (id, user_pool_id, status, finished_at, chunks) VALUES \
         ('00000000-0000-4000-8000-00000000000a', '{pool}', 'staging', NULL, 1), \
         ('00000000-0000-4000-8000-00000000000b', '{pool}', 'complete', now(), 1), \
         ('00000000-0000-4000-8000-00000000000c', '{pool}', 'complete', now() - interval '15 days', 1), \
         ('00000000-0000-4000-8000-00000000000d', '{pool}', 'broken_off', now() - interval '13 days', 0); \
         INSERT INTO drift_listing_chunks (listing_id, seq, users) VALUES \
         ('00000000-0000-4000-8000-00000000000a', 0, '[]'), \
         ('00000000-0000-4000-8000-00000000000b', 0, '[]'), \
         ('00000000-0000-4000-8000-00000000000c', 0, '[]')"
    ))
    .await;
    let begun = check
        .invoke(&w.seal(&json!({"hand_over": {"op": "begin", "pool": pool,
            "issued_at": drift_check::listing::unix_now()}})))
        .await;
    let listing = begun.response()["listing"].as_str().unwrap().to_owned();
    let left = one(
        &w,
        &format!(
            "SELECT right(id::text, 1) AS id, status, \
             (SELECT count(*) FROM drift_listing_chunks c WHERE c.listing_id = l.id) AS chunks \
             FROM drift_listings l WHERE id <> '{listing}' ORDER BY id"
        ),
    )
    .await;
    let left: Vec<(String, String, i64)> = left
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_owned(),
                l["status"].as_str().unwrap().to_owned(),
                l["chunks"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        left,
        [
            ("a".to_owned(), "broken_off".to_owned(), 0),
            ("b".to_owned(), "complete".to_owned(), 1),
            ("d".to_owned(), "broken_off".to_owned(), 0),
        ],
        "a superseded, b kept whole, c past retention, d within it"
    );
}
