//! The cold path counted in exchanges on the wire, not in milliseconds: a front between the
//! function and Postgres (`harness::latency`, here with no delay) counts each answer that
//! follows a request. How much of it waits in sequence on a real network is the bench's to
//! measure (BENCHMARKS.md, "Round trips"); what is asserted here is what the client sends and
//! when it may: the TLS handshake before the credentials exist, and the schema check in the
//! insert's own round trip; and what a warm IP move costs sg-ip-update.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::Duration,
};

use harness::{
    Function, Stack, aws, fixtures::secret_env, fixtures::signup, forbid, front::Front,
    function_binary, latency::LatencyFront,
};
use serde_json::json;

#[path = "common/sg.rs"]
mod sg;

/// A server answering each line it reads with that line.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if out.write_all(format!("{line}\n").as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn the_latency_front_counts_one_exchange_per_answer_to_what_was_sent_before_it() {
    let front = LatencyFront::start(echo_server(), Duration::from_millis(1)).unwrap();
    let stream = TcpStream::connect(("127.0.0.1", front.port)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    let mut ask = |text: &str, answers: usize| {
        writer.write_all(text.as_bytes()).unwrap();
        for _ in 0..answers {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
    };
    ask("one\n", 1);
    ask("two\n", 1);
    assert_eq!(front.exchanges(), 2, "two requests, each answered in turn");
    // Written together, answered together: one exchange, as a pipelined transaction is.
    ask("three\nfour\nfive\n", 3);
    assert!(
        (3..=5).contains(&front.exchanges()),
        "pipelined requests counted {} exchanges in all",
        front.exchanges()
    );
    assert_eq!(front.connections(), 1);
}

/// Exchanges with Postgres on a cold sign-up's one connection: the SSL request, the TLS
/// handshake, SCRAM's three steps (the startup message and the two client messages), and
/// the schema guard with the insert in one transaction.
const COLD_EXCHANGES: usize = 6;

/// With `DB_HOST` set, the cold path opens TCP and TLS to Postgres while moto holds the
/// secret for a second, logs in once it comes, and sends the schema guard, the insert and
/// its commit together; a warm sign-up is then one exchange.
#[tokio::test]
async fn a_cold_sign_up_is_six_exchanges_with_postgres_tls_before_the_secret_and_a_warm_one_is_one()
{
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let pg = LatencyFront::start(db.stack.pg_port, Duration::ZERO).unwrap();
    let password = db.stack.app_password.clone();
    forbid(&password);
    let mut secret = db.rds_secret(&password);
    secret["port"] = json!(pg.port);
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    let arn = aws::create_secret(&sm, &secret).await;
    let moto_port = stack.moto_port();
    let hold = Duration::from_secs(1);
    let slow_moto = Front::start_delayed(moto_port, hold).await;
    let pg_port = pg.port.to_string();
    let mut env = secret_env(
        &db,
        stack,
        &arn,
        &[
            ("DB_HOST", "127.0.0.1"),
            ("DB_PORT", &pg_port),
            ("DB_POOLING", "session"),
            ("DB_CONNECT_TIMEOUT_MS", "4000"),
            ("SECRET_FETCH_TIMEOUT_MS", "4000"),
        ],
    );
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push((
        "AWS_ENDPOINT_URL".into(),
        format!("http://127.0.0.1:{}", slow_moto.port),
    ));
    let f = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .unwrap();
    f.invoke(&signup("rt-cold", "rt_cold")).await.response();
    let cold = pg.exchanges();
    let times = pg.exchange_times();
    f.invoke(&signup("rt-warm", "rt_warm")).await.response();
    let warm = pg.exchanges() - cold;
    f.stop().await;

    assert_eq!(pg.connections(), 1, "one connection, the early one");
    assert_eq!(
        cold, COLD_EXCHANGES,
        "SSL request, TLS, three SCRAM steps, guard and insert"
    );
    assert_eq!(warm, 1, "a warm sign-up is one exchange");
    // The SSL request and the TLS handshake were answered while moto still held the secret.
    let asked = slow_moto.accept_times()[0];
    assert!(
        times[1] < asked + hold,
        "the TLS handshake was answered {:?} after the secret was asked for; its answer was held {hold:?}",
        times[1].duration_since(asked).unwrap_or_default()
    );
}

/// A warm IP move waits on Postgres six times: the owner's lock, the row, the pending state
/// with the shared-rule check beside it, then (after EC2) `BEGIN` with the applied state and
/// its audit row, the commit, and the unlock. Each pair sent as one flight would cost a round
/// trip apiece if it went one statement at a time.
#[tokio::test]
async fn a_warm_ip_move_is_six_exchanges_with_postgres() {
    let fx = sg::Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let pg = LatencyFront::start(fx.db.stack.pg_port, Duration::ZERO).unwrap();
    let mut secret = fx.db.rds_secret(&fx.db.stack.app_password);
    secret["port"] = json!(pg.port);
    let sm = aws_sdk_secretsmanager::Client::new(&fx.moto.sdk_config().await);
    let arn = aws::create_secret(&sm, &secret).await;
    let pg_port = pg.port.to_string();
    let env = secret_env(
        &fx.db,
        &fx.moto,
        &arn,
        &[
            ("DB_HOST", "127.0.0.1"),
            ("DB_PORT", &pg_port),
            ("SECURITY_GROUP_ID", &fx.group),
            ("SG_IP_UPDATE_SOURCE", "eventbridge"),
        ],
    );
    let f = Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap();
    // The first two create the rule and then move it, preparing every statement a move uses.
    let mut warm = Vec::new();
    for ip in ["34.201.17.5", "52.14.99.8", "34.201.17.5", "52.14.99.8"] {
        let before = pg.exchanges();
        let inv = f.invoke(&sg::change("andrew", ip)).await;
        let v = inv.response();
        assert_eq!(v["outcome"], "applied", "{v}");
        warm.push(pg.exchanges() - before);
    }
    f.stop().await;
    assert_eq!(warm[2..], [6, 6], "exchanges per invocation: {warm:?}");
    assert_eq!(fx.audit().await.len(), 4, "every move has its audit row");
}
