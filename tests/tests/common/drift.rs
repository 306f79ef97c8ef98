//! What the drift-check test files share: a world of their own per test ([`World`]: a fresh
//! database, a Cognito pool, the function started against both), a world with drift of every
//! kind, and the run's summary and log lines as the tests read them.
// Each test file uses part of this.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use harness::{
    Function, Invocation, Stack, TestDb, aws,
    fixtures::{RuleRow, add_managed_rule, function_env},
    function_binary,
};
use serde_json::Value;
use shared::signing::SigningKey;

/// One test's world: a fresh database, a Cognito pool of its own, and clients for moto.
pub struct World {
    pub db: TestDb,
    pub ec2: aws_sdk_ec2::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub pool: String,
    pub moto: Stack,
    /// The hand-over key's secret (`DRIFT_HANDOVER_KEY_SECRET_ARN`, given to every function
    /// started here) and the key it holds, to sign hand-overs as the lister does.
    pub handover_key_arn: String,
    pub handover_key: String,
}

impl World {
    pub async fn new(db: TestDb) -> World {
        let moto = Stack::shared().clone();
        let sdk = moto.sdk_config().await;
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
        let pool = aws::create_pool(&cognito).await;
        let handover_key = format!("hand-over-{}", uuid::Uuid::new_v4().simple());
        let handover_key_arn = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(format!("handover-{}", uuid::Uuid::new_v4().simple()))
            .secret_string(&handover_key)
            .send()
            .await
            .expect("create_secret")
            .arn()
            .expect("arn")
            .to_owned();
        World {
            db,
            ec2: aws_sdk_ec2::Client::new(&sdk),
            cognito,
            pool,
            moto,
            handover_key_arn,
            handover_key,
        }
    }

    /// `payload` (`{"hand_over": {"op": ...}}`) signed with the world's hand-over key, as the
    /// lister sends it.
    pub fn seal(&self, payload: &Value) -> Value {
        let key = SigningKey::new(self.handover_key.as_bytes()).expect("a long enough key");
        drift_check::listing::seal(&key, payload)
    }

    pub async fn shared() -> World {
        World::new(Stack::shared().fresh_database().await.unwrap()).await
    }

    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars = vec![
            ("USER_POOL_ID", self.pool.as_str()),
            (
                "DRIFT_HANDOVER_KEY_SECRET_ARN",
                self.handover_key_arn.as_str(),
            ),
        ];
        vars.extend_from_slice(extra);
        function_env(&self.db, &self.moto, &vars)
    }

    pub async fn start(&self, extra: &[(&str, &str)]) -> Function {
        Function::spawn(&function_binary("drift-check"), &self.env(extra))
            .await
            .unwrap()
    }

    pub async fn group(&self) -> String {
        aws::create_group(&self.ec2).await
    }

    pub async fn open(&self, group: &str, cidr: &str, port: i32) -> String {
        aws::open_port(&self.ec2, group, cidr, port).await
    }

    pub async fn manage(&self, group: &str, owner: &str, cidr: &str, rule_id: Option<&str>) {
        let row = RuleRow {
            owner,
            cidr: Some(cidr),
            aws_rule_id: rule_id,
            ..RuleRow::default()
        };
        add_managed_rule(&self.db, group, row).await;
    }

    pub async fn ingress(&self, group: &str) -> Vec<(String, i32)> {
        let rules = aws::ingress(&self.ec2, group).await;
        let mut by_source: Vec<_> = rules
            .into_iter()
            .map(|(_, cidr, port, _)| (cidr, port))
            .collect();
        by_source.sort();
        by_source
    }

    /// A user in the pool with a verified email; confirmed unless `confirmed` is false.
    /// Returns its sub.
    pub async fn user(&self, username: &str, confirmed: bool) -> String {
        self.user_with(username, confirmed, &[("email_verified", "true")])
            .await
    }

    /// [`World::user`] with `attributes` besides its email and name.
    pub async fn user_with(
        &self,
        username: &str,
        confirmed: bool,
        attributes: &[(&str, &str)],
    ) -> String {
        let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
        let mut create = self
            .cognito
            .admin_create_user()
            .user_pool_id(&self.pool)
            .username(username)
            .user_attributes(attr("name", &format!("{username} name")));
        if !attributes.iter().any(|(name, _)| *name == "email") {
            create = create.user_attributes(attr("email", &format!("{username}@example.com")));
        }
        for (name, value) in attributes {
            create = create.user_attributes(attr(name, value));
        }
        create
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .send()
            .await
            .unwrap();
        if confirmed {
            self.cognito
                .admin_set_user_password()
                .user_pool_id(&self.pool)
                .username(username)
                .password("Correct-Horse-9")
                .permanent(true)
                .send()
                .await
                .unwrap();
        }
        let user = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.pool)
            .username(username)
            .send()
            .await
            .unwrap();
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap()
            .to_owned()
    }

    /// The row the trigger wrote for the user `handle` made by [`World::user`]: the same
    /// name, email and handle, so that only what a test changes differs.
    pub async fn add_row(&self, sub: &str, handle: &str) {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .execute(
                "INSERT INTO users (cognito_user_id, email, display_name, handle, created_at) \
                 VALUES ($1, $2, $3, $4, now() - interval '1 hour')",
                &[
                    &sub,
                    &format!("{handle}@example.com"),
                    &format!("{handle} name"),
                    &handle,
                ],
            )
            .await
            .unwrap();
    }

    pub async fn user_rows(&self) -> Vec<(String, String, String)> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT cognito_user_id, handle, display_name FROM users ORDER BY handle",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    pub async fn sql(&self, statement: &str) {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .batch_execute(statement)
            .await
            .unwrap();
    }
}

/// Every line drift-check printed up to its closing line for `inv` (its EMF metric lines come
/// just before that line, and may reach the harness just after the answer).
pub async fn logs_through(f: &Function, inv: &Invocation) -> Vec<String> {
    f.logs_when(
        |logs| {
            logs.iter()
                .any(|l| l.contains(&inv.request_id) && l.contains("\"message\":\"drift-check\""))
        },
        Duration::from_secs(5),
    )
    .await
}

/// The counts of the five kinds every test world can have, in a fixed order: missing,
/// changed, unexpected, missing_user, orphan_user.
pub fn counts(summary: &Value) -> [u64; 5] {
    let c = &summary["counts"];
    [
        "missing",
        "changed",
        "unexpected",
        "missing_user",
        "orphan_user",
    ]
    .map(|k| c[k].as_u64().unwrap())
}

/// Drift of every kind: a managed rule deleted in AWS, one moved, 0.0.0.0/0 opened by hand,
/// a confirmed user with no row, an unconfirmed one (ignored), and a row with no user.
pub async fn drifted_world() -> (World, String, String) {
    let w = World::shared().await;
    let group = w.group().await;
    let kept = w.open(&group, "34.201.17.5/32", 5432).await;
    w.manage(&group, "kept", "34.201.17.5/32", Some(&kept))
        .await;
    let deleted = w.open(&group, "52.14.99.8/32", 5432).await;
    w.manage(&group, "gone", "52.14.99.8/32", Some(&deleted))
        .await;
    w.ec2
        .revoke_security_group_ingress()
        .group_id(&group)
        .security_group_rule_ids(&deleted)
        .send()
        .await
        .unwrap();
    let moved = w.open(&group, "18.204.3.77/32", 5432).await;
    w.manage(&group, "moved", "18.204.3.99/32", Some(&moved))
        .await;
    w.open(&group, "0.0.0.0/0", 5432).await;

    let with_row = w.user("alice", true).await;
    w.add_row(&with_row, "alice").await;
    let lost = w.user("bob", true).await;
    w.user("carol", false).await;
    w.add_row("0b5e7a51-dead-4bee-8a0a-000000000000", "ghost")
        .await;
    (w, group, lost)
}
