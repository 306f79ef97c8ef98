//! IAM database authentication. Nothing local can validate a token, so the token itself is
//! tested: with fixed credentials and a fixed time, ours equals the one botocore's
//! `generate_db_auth_token` makes (an independent implementation, run from Python), and every
//! new connection presents a freshly signed token as its password, read off the wire by a
//! listener that speaks the Postgres protocol up to the password message (over TLS, as RDS
//! requires).

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_sdk_secretsmanager::config::{Credentials, Region, SharedCredentialsProvider};
use harness::{Function, Stack, event, function_binary};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use shared::{
    db::{
        CredentialSource, Db, DbConfig, DbError,
        iam::{IamTarget, auth_token},
    },
    tls::SslMode,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::TlsAcceptor;

const BOTOCORE_TOKEN: &str = r#"
import datetime, sys
from unittest import mock
import botocore.auth, botocore.session
host, port, user, region, key, secret, token, at = sys.argv[1:9]
session = botocore.session.get_session()
session.set_credentials(key, secret, token or None)
rds = session.create_client("rds", region_name=region)
fixed = datetime.datetime.strptime(at, "%Y%m%dT%H%M%SZ")
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fixed):
    print(rds.generate_db_auth_token(host, int(port), user))
"#;

/// botocore's token for `target`, signed with these credentials at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`, as the token's `X-Amz-Date` carries it).
fn botocore_token(target: &IamTarget, creds: &Credentials, amz_date: &str) -> String {
    let port = target.port.to_string();
    let out = Command::new("python3")
        .args(["-c", BOTOCORE_TOKEN])
        .args([
            target.host.as_str(),
            &port,
            &target.user,
            &target.region,
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token().unwrap_or(""),
            amz_date,
        ])
        // Nothing from this process's AWS settings may reach botocore.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        // botocore's own Python signer (not the awscrt one it prefers when installed): its
        // clock is the one patched above.
        .env("BOTO_DISABLE_CRT", "true")
        .output()
        .expect("running python3 (botocore)");
    assert!(
        out.status.success(),
        "botocore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn amz_date(token: &str) -> &str {
    token
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-Date="))
        .expect("a token carries X-Amz-Date")
}

fn target(host: &str, port: u16, user: &str, region: &str) -> IamTarget {
    IamTarget {
        host: host.into(),
        port,
        user: user.into(),
        region: region.into(),
    }
}

#[test]
fn our_token_equals_botocores_for_the_same_credentials_and_time() {
    // 2026-11-24T12:34:56Z
    let at = UNIX_EPOCH + Duration::from_secs(1_795_523_696);
    let role = Credentials::new(
        "ASIAEXAMPLEKEYID0001",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        Some("IQoJb3JpZ2luX2VjEXAMPLE/session+token==".into()),
        None,
        "fixed",
    );
    let user_keys = Credentials::new(
        "AKIAEXAMPLEKEYID0002",
        "secret/with+odd=chars",
        None,
        None,
        "fixed",
    );
    let cases = [
        (
            target(
                "app.proxy-c1x2y3.eu-west-1.rds.amazonaws.com",
                5432,
                "app",
                "eu-west-1",
            ),
            &role,
        ),
        (
            target(
                "db.cluster-abc.us-east-1.rds.amazonaws.com",
                6543,
                "iam user+1",
                "us-east-1",
            ),
            &user_keys,
        ),
    ];
    for (target, creds) in cases {
        let ours = auth_token(&target, creds, at).unwrap();
        assert_eq!(amz_date(&ours), "20261124T123456Z");
        let theirs = botocore_token(&target, creds, "20261124T123456Z");
        println!("ours:     {ours}\nbotocore: {theirs}");
        assert_eq!(ours, theirs, "for {target:?}");
    }
}

/// A listener that takes TLS with the stack's certificate, asks for a cleartext password,
/// records it and refuses the login (SQLSTATE 28P01).
struct PasswordRecorder {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl PasswordRecorder {
    async fn start(stack: &Stack) -> PasswordRecorder {
        let tls_dir = stack.dir.join("tls");
        let certs = CertificateDer::pem_file_iter(tls_dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_dir.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, record) = (acceptor.clone(), record.clone());
                tokio::spawn(async move {
                    if let Ok(password) = take_password(stream, acceptor).await {
                        record.lock().unwrap().push(password);
                    }
                });
            }
        });
        PasswordRecorder { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn take_password(mut tcp: TcpStream, acceptor: TlsAcceptor) -> std::io::Result<String> {
    // SSLRequest: length 8, code 80877103.
    let mut request = [0u8; 8];
    tcp.read_exact(&mut request).await?;
    assert_eq!(
        request,
        [0, 0, 0, 8, 4, 210, 22, 47],
        "the client asks for TLS first"
    );
    tcp.write_all(b"S").await?;
    let mut tls = acceptor.accept(tcp).await?;
    // StartupMessage: length, protocol, parameters.
    let len = tls.read_u32().await? as usize;
    let mut startup = vec![0; len - 4];
    tls.read_exact(&mut startup).await?;
    // AuthenticationCleartextPassword.
    tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
    tls.flush().await?;
    // PasswordMessage: 'p', length, the password and a NUL.
    assert_eq!(tls.read_u8().await?, b'p');
    let len = tls.read_u32().await? as usize;
    let mut body = vec![0; len - 4];
    tls.read_exact(&mut body).await?;
    let password = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).into_owned();
    let fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword recorded by the test\0\0";
    let mut error = vec![b'E'];
    error.extend_from_slice(&(4 + fields.len() as u32).to_be_bytes());
    error.extend_from_slice(fields);
    tls.write_all(&error).await?;
    tls.shutdown().await?;
    Ok(password)
}

fn fixed_credentials() -> Credentials {
    Credentials::new(
        "ASIAEXAMPLEKEYID0003",
        "fixed/secret+key",
        Some("fixed-session-token".into()),
        None,
        "fixed",
    )
}

#[tokio::test]
async fn every_new_connection_presents_a_freshly_signed_token() {
    let stack = Stack::shared();
    let recorder = PasswordRecorder::start(stack).await;
    let target = target("127.0.0.1", recorder.port, "app", "us-east-1");
    let config = DbConfig {
        credentials: CredentialSource::Iam {
            target: target.clone(),
            dbname: Some("app".into()),
        },
        host_override: None,
        port_override: None,
        dbname_override: None,
        sslmode: SslMode::VerifyFull,
        ca_bundle: Some(stack.ca_bundle.clone()),
        pool_size: 1,
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(2),
        secret_timeout: Duration::from_secs(2),
        application_name: "iam-test".into(),
        pooling: Default::default(),
    };
    let creds = fixed_credentials();
    let sdk = aws_config::SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(creds.clone()))
        .region(Region::new("us-east-1"))
        .build();
    let db = Db::from_config(&config, &sdk).unwrap();

    let started = SystemTime::now();
    for attempt in 0..2 {
        if attempt > 0 {
            // Tokens are signed to the second: let the clock move on.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let err = db
            .client()
            .await
            .err()
            .expect("the recorder refuses every login");
        assert!(
            matches!(err, DbError::Connect { ref source, .. } if source.code().map(|c| c.code()) == Some("28P01")),
            "{err}"
        );
    }
    let seen = recorder.seen();
    assert_eq!(seen.len(), 2, "two connections, two passwords: {seen:?}");
    assert_ne!(seen[0], seen[1], "each connection signs its own token");
    assert!(amz_date(&seen[0]) < amz_date(&seen[1]));
    for token in &seen {
        assert_eq!(token, &botocore_token(&target, &creds, amz_date(token)));
    }
    // Signed at connect time, not once at start: the first is no older than the test.
    let first = auth_token(&target, &creds, started).unwrap();
    assert!(amz_date(&seen[0]) >= amz_date(&first));
}

#[tokio::test]
async fn the_function_with_db_auth_iam_logs_in_with_a_token_for_its_role() {
    let stack = Stack::shared();
    let recorder = PasswordRecorder::start(stack).await;
    let creds = fixed_credentials();
    let port = recorder.port.to_string();
    let env: Vec<(String, String)> = [
        ("DB_AUTH", "iam"),
        ("DB_HOST", "127.0.0.1"),
        ("DB_PORT", port.as_str()),
        ("DB_USER", "app"),
        ("DB_NAME", "app"),
        ("DB_CA_BUNDLE", &stack.ca_bundle.display().to_string()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", creds.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key()),
        (
            "AWS_SESSION_TOKEN",
            creds.session_token().unwrap_or_default(),
        ),
        ("AWS_ENDPOINT_URL", &stack.aws_endpoint),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let f = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .expect("spawn post-confirmation");
    let inv = f.invoke(&event("post-confirmation.json")).await;
    let (t, m) = inv.error();
    assert_eq!(t, "Retryable.DatabaseUnavailable", "{m}");
    let seen = recorder.seen();
    // One at init, one for the invocation (the init one was refused).
    assert!(seen.len() >= 2, "{seen:?}");
    for token in &seen {
        assert!(token.starts_with(&format!("127.0.0.1:{port}/?Action=connect&DBUser=app&")));
        let target = target("127.0.0.1", recorder.port, "app", "us-east-1");
        assert_eq!(token, &botocore_token(&target, &creds, amz_date(token)));
    }
    assert!(!m.contains(creds.secret_access_key()));
}
