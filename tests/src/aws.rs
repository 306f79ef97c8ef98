//! Seeding and reading moto's EC2 and Cognito for the tests.

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};

/// A new security group with a unique name; returns its id.
pub async fn create_group(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.create_security_group()
        .group_name(format!("rds-{}", uuid::Uuid::new_v4().simple()))
        .description("database")
        .send()
        .await
        .expect("create_security_group")
        .group_id()
        .expect("group id")
        .to_owned()
}

/// Opens a TCP port to a CIDR by hand, as someone in the console would; returns the rule id.
pub async fn open_port(ec2: &aws_sdk_ec2::Client, group: &str, cidr: &str, port: i32) -> String {
    let permission = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build();
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(permission)
        .send()
        .await
        .expect("authorize_security_group_ingress")
        .security_group_rules()[0]
        .security_group_rule_id()
        .expect("rule id")
        .to_owned()
}

/// A group's ingress rules as (rule id, CIDR, from port, to port), sorted.
pub async fn ingress(ec2: &aws_sdk_ec2::Client, group: &str) -> Vec<(String, String, i32, i32)> {
    let out = ec2
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .expect("describe_security_group_rules");
    let mut rules: Vec<_> = out
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() != Some(true))
        .map(|r| {
            (
                r.security_group_rule_id().unwrap_or_default().to_owned(),
                r.cidr_ipv4()
                    .or(r.cidr_ipv6())
                    .unwrap_or_default()
                    .to_owned(),
                r.from_port().unwrap_or(-1),
                r.to_port().unwrap_or(-1),
            )
        })
        .collect();
    rules.sort();
    rules
}

/// A new user pool with a unique name; returns its id.
pub async fn create_pool(cognito: &aws_sdk_cognitoidentityprovider::Client) -> String {
    cognito
        .create_user_pool()
        .pool_name(format!("pool-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("create_user_pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("pool id")
        .to_owned()
}

/// A new Secrets Manager secret holding `value`; returns its ARN.
pub async fn create_secret(
    sm: &aws_sdk_secretsmanager::Client,
    value: &serde_json::Value,
) -> String {
    sm.create_secret()
        .name(format!("db-{}", uuid::Uuid::new_v4().simple()))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create_secret")
        .arn()
        .expect("arn")
        .to_owned()
}

/// `n` users `{prefix}{i}` in `pool`, created 64 at a time (moto has no batch call); those for
/// which `confirmed(i)` holds are confirmed, as after sign-up, the rest are left waiting for a
/// new password. Returns their subs, by `i`.
pub async fn create_users(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    prefix: &str,
    n: usize,
    confirmed: impl Fn(usize) -> bool,
) -> Vec<String> {
    let mut subs = vec![String::new(); n];
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in chunk {
            let (cognito, pool) = (cognito.clone(), pool.to_owned());
            let username = format!("{prefix}{i:07}");
            let confirm = confirmed(i);
            tasks.spawn(async move { (i, create_user(&cognito, &pool, &username, confirm).await) });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, sub) = done.expect("a user-creating task panicked");
            subs[i] = sub;
        }
    }
    subs
}

/// One user in `pool` with an email and a name, confirmed or not; returns its sub.
pub async fn create_user(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    username: &str,
    confirmed: bool,
) -> String {
    let attr = |name: &str, value: String| {
        aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .expect("an attribute has a name")
    };
    let created = cognito
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .user_attributes(attr("email", format!("{username}@example.com")))
        .user_attributes(attr("email_verified", "true".to_owned()))
        .user_attributes(attr("name", format!("{username} name")))
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
        .send()
        .await
        .expect("admin_create_user");
    if confirmed {
        cognito
            .admin_set_user_password()
            .user_pool_id(pool)
            .username(username)
            .password("Correct-Horse-9")
            .permanent(true)
            .send()
            .await
            .expect("admin_set_user_password");
    }
    created
        .user()
        .and_then(|u| u.attributes().iter().find(|a| a.name() == "sub"))
        .and_then(|a| a.value())
        .expect("admin_create_user returned no sub")
        .to_owned()
}
