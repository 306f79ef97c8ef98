//! What the sg-ip-update test files share: a fresh database and security group per test
//! ([`Fixture`]), rows, the audit as read back, and the requests each way in.
// Each test file uses part of this.
#![allow(dead_code)]

use harness::{
    Function, Invocation, Outcome, Stack, TestDb, aws, event,
    fixtures::{RuleRow, add_managed_rule, function_env},
    function_binary,
};
use serde_json::{Value, json};

/// A row as the tests read it: (cidr, aws rule id, status, last error).
pub type RowState = (Option<String>, Option<String>, String, Option<String>);

pub struct Fixture {
    pub db: TestDb,
    pub ec2: aws_sdk_ec2::Client,
    pub group: String,
    pub moto: Stack,
}

impl Fixture {
    pub async fn new(moto: Stack) -> Fixture {
        let db = Stack::shared().fresh_database().await.unwrap();
        let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
        let group = aws::create_group(&ec2).await;
        Fixture {
            db,
            ec2,
            group,
            moto,
        }
    }

    pub async fn shared() -> Fixture {
        Fixture::new(Stack::shared().clone()).await
    }

    /// The bus function's environment (`SG_IP_UPDATE_SOURCE=eventbridge`): bus events and
    /// bare direct invocations.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_as("eventbridge")
    }

    /// The environment of the function that takes `source`'s requests (`eventbridge` or
    /// `function_url`).
    pub fn env_as(&self, source: &str) -> Vec<(String, String)> {
        function_env(
            &self.db,
            &self.moto,
            &[
                ("SECURITY_GROUP_ID", &self.group),
                ("SG_IP_UPDATE_SOURCE", source),
            ],
        )
    }

    /// The bus function: EventBridge events and bare direct invocations.
    pub async fn start(&self) -> Function {
        self.start_with(&[]).await
    }

    /// [`Fixture::start`] with `extra` settings.
    pub async fn start_with(&self, extra: &[(&str, &str)]) -> Function {
        self.spawn(self.env(), extra).await
    }

    /// The Function URL's function: Function URL requests only.
    pub async fn start_url(&self) -> Function {
        self.start_url_with(&[]).await
    }

    /// [`Fixture::start_url`] with `extra` settings.
    pub async fn start_url_with(&self, extra: &[(&str, &str)]) -> Function {
        self.spawn(self.env_as("function_url"), extra).await
    }

    async fn spawn(&self, mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Function {
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Function::spawn(&function_binary("sg-ip-update"), &env)
            .await
            .unwrap()
    }

    pub async fn open(&self, cidr: &str) -> String {
        aws::open_port(&self.ec2, &self.group, cidr, 5432).await
    }

    /// A row that unverified requests (bus events, bare direct invocations) may move.
    pub async fn add_owner(
        &self,
        owner: &str,
        cidr: Option<&str>,
        rule_id: Option<&str>,
        allow_private: bool,
    ) {
        // These tests send bus events and bare invocations: rows that allow unverified moves.
        let row = RuleRow {
            owner,
            cidr,
            aws_rule_id: rule_id,
            allow_private,
            allow_unverified: true,
            ..RuleRow::default()
        };
        add_managed_rule(&self.db, &self.group, row).await;
    }

    /// Andrew's row as AWS already has it (34.201.17.5/32), movable by his principal only
    /// (and by unverified requests when `allow_unverified`).
    pub async fn andrews_applied_rule(&self, allow_unverified: bool) {
        let rule_id = self.open("34.201.17.5/32").await;
        self.add_principal(
            "andrew",
            Some(ANDREW),
            allow_unverified,
            Some(("34.201.17.5/32", &rule_id)),
        )
        .await;
    }

    /// What a refused request must leave as it was: the group's rules and andrew's row.
    pub async fn andrews_state(&self) -> (Vec<(String, String, i32, i32)>, RowState) {
        (self.ingress().await, self.row("andrew").await)
    }

    /// A row only `principal` may move (unless `allow_unverified`), at `cidr` with AWS rule
    /// `rule_id`.
    pub async fn add_principal(
        &self,
        owner: &str,
        principal: Option<&str>,
        allow_unverified: bool,
        at: Option<(&str, &str)>,
    ) {
        let row = RuleRow {
            owner,
            cidr: at.map(|a| a.0),
            aws_rule_id: at.map(|a| a.1),
            principal,
            allow_unverified,
            ..RuleRow::default()
        };
        add_managed_rule(&self.db, &self.group, row).await;
    }

    /// The audit's who-and-how: (owner, outcome, via, caller ARN, caller account, detail).
    pub async fn audit_callers(&self) -> Vec<AuditCaller> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT owner, outcome, via, caller_arn, caller_account_id, detail FROM ip_update_audit ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| AuditCaller {
                owner: r.get(0),
                outcome: r.get(1),
                via: r.get(2),
                caller_arn: r.get(3),
                caller_account_id: r.get(4),
                detail: r.get(5),
            })
            .collect()
    }

    /// Deletes a rule from the group, as someone in the console would.
    pub async fn revoke_by_hand(&self, rule_id: &str) {
        self.ec2
            .revoke_security_group_ingress()
            .group_id(&self.group)
            .security_group_rule_ids(rule_id)
            .send()
            .await
            .unwrap();
    }

    /// The group's ingress rules in EC2: (rule id, CIDR, ports).
    pub async fn ingress(&self) -> Vec<(String, String, i32, i32)> {
        aws::ingress(&self.ec2, &self.group).await
    }

    /// The owner's row: (cidr, aws rule id, status, last error).
    pub async fn row(&self, owner: &str) -> RowState {
        let r = self
            .db
            .connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT cidr::text, aws_rule_id, status, last_error FROM managed_ingress_rules WHERE owner = $1",
                &[&owner],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    }

    pub async fn audit(&self) -> Vec<(String, Option<String>, Option<String>, String)> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT owner, old_cidr, new_cidr, outcome FROM ip_update_audit ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }
}

#[derive(Debug)]
pub struct AuditCaller {
    pub owner: String,
    pub outcome: String,
    pub via: Option<String>,
    pub caller_arn: Option<String>,
    pub caller_account_id: Option<String>,
    pub detail: Option<String>,
}

pub fn change(owner: &str, ip: &str) -> Value {
    let mut e = event("sg-ip-update.json");
    e["detail"] = json!({"owner": owner, "ip": ip});
    e
}

pub const ANDREW: &str = "arn:aws:iam::123456789012:user/andrew";
pub const BEA: &str = "arn:aws:iam::123456789012:user/bea";

/// A Function URL request as AWS hands it over (`events/sg-ip-update-function-url.json`),
/// signed by `caller` (`None`: no identity, as with AuthType NONE), asking to move `owner`.
/// Each one is a request of its own: its own SigV4 signature and request id, as two requests
/// signed one after the other would be (sending the same value twice is a replay).
pub fn url_change(caller: Option<&str>, owner: &str, ip: &str) -> Value {
    let mut e = event("sg-ip-update-function-url.json");
    e["body"] = json!(json!({"owner": owner, "ip": ip}).to_string());
    let signature = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    e["headers"]["authorization"] = json!(format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261123/us-east-1/lambda/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
    ));
    e["requestContext"]["requestId"] = json!(uuid::Uuid::new_v4().to_string());
    match caller {
        Some(arn) => {
            let iam = &mut e["requestContext"]["authorizer"]["iam"];
            iam["userArn"] = json!(arn);
            iam["accountId"] = json!(arn.split(':').nth(4).unwrap());
            iam["callerId"] = json!(format!("AIDA{}", arn.len()));
        }
        None => e["requestContext"]["authorizer"] = Value::Null,
    }
    e
}

/// A Function URL answer: its status and its JSON body. A Function URL request is always
/// answered this way, never with a runtime error (Lambda would turn that into a bare 502).
pub fn http(inv: &harness::Invocation) -> (i64, Value) {
    let r = inv.response();
    assert_eq!(r["headers"]["content-type"], "application/json", "{r}");
    assert_eq!(r["isBase64Encoded"], false, "{r}");
    let body = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    (r["statusCode"].as_i64().unwrap(), body)
}

/// How a request was turned down: `(type, message)`. An EventBridge event refused for good is
/// answered `{"outcome": "refused", "error", "message"}` (an error would be retried by Lambda);
/// anything else that fails is an error.
pub fn failure(inv: &Invocation) -> (String, String) {
    match &inv.outcome {
        Outcome::Response(r) => {
            assert_eq!(r["outcome"], "refused", "{r}");
            let error = r["error"].as_str().unwrap().to_owned();
            assert!(error.starts_with("Permanent."), "{r}");
            (error, r["message"].as_str().unwrap().to_owned())
        }
        _ => {
            let (t, m) = inv.error();
            (t.to_owned(), m.to_owned())
        }
    }
}
