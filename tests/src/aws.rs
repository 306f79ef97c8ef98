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
