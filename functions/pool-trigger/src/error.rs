//! What can go wrong with a request, in the words CloudFormation shows the operator; a
//! refused `UpdateUserPool` names the template parameter that would let it through.

use aws_sdk_cognitoidentityprovider::types::UserPoolType;

use crate::trigger::Trigger;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad property {name}: {reason}")]
    BadProperty { name: &'static str, reason: String },
    #[error(
        "this function may not wire a {0} trigger: {var} is not set (it names the one \
         function a {0} trigger may be set to)",
        var = .0.function_var()
    )]
    NotConfigured(Trigger),
    // The template feeds each resource's ReplaceExistingTrigger from that trigger's own
    // parameter: an operator sees this in the stack's events and acts on the parameter.
    #[error(
        "user pool {pool} already has a different {trigger} trigger ({current}); refusing to \
         replace it. Set the stack parameter {parameter} (the trigger resource's \
         ReplaceExistingTrigger) to true to replace it (it is put back when the stack is \
         deleted)",
        parameter = .trigger.replace_parameter()
    )]
    OtherTrigger {
        pool: String,
        trigger: Trigger,
        current: String,
    },
    #[error(
        "cannot read the record key (secret {secret}), which signs this resource's physical \
         id: {reason}"
    )]
    RecordKey { secret: String, reason: String },
    #[error(
        "this function serves only the {layout} pool's resources (POOL_LAYOUT)",
        layout = match .0 { crate::PoolLayout::Created => "created", crate::PoolLayout::Existing => "existing" }
    )]
    WrongLayout(crate::PoolLayout),
    #[error("user pool {0} does not exist")]
    PoolNotFound(String),
    #[error("DescribeUserPool {pool}: {message}")]
    Describe { pool: String, message: String },
    #[error("UpdateUserPool {pool}: {message}")]
    Update { pool: String, message: String },
    #[error(
        "UpdateUserPool {pool}: this function may not pass the pool's SMS role {role} to \
         Cognito ({message}). Set the stack parameter UserPoolSmsRoleArn to {role} to grant it \
         iam:PassRole on that role"
    )]
    SmsRoleNotPassable {
        pool: String,
        role: String,
        message: String,
    },
}

/// What a failed `UpdateUserPool` of `pool` tells CloudFormation, from the error's `code` and
/// its one-line text. Updating a pool that sends SMS (`SmsConfiguration.SnsCallerArn`) hands
/// Cognito that role, which needs `iam:PassRole` on it; the template grants it only when told
/// the role (`UserPoolSmsRoleArn`), so that refusal names the parameter.
pub fn update_failure(pool: &UserPoolType, code: Option<&str>, line: String) -> Error {
    let pool_id = pool.id.clone().unwrap_or_default();
    let role = pool
        .sms_configuration
        .as_ref()
        .map(|c| c.sns_caller_arn())
        .filter(|arn| !arn.is_empty());
    let denied = code.is_some_and(|c| c.starts_with("AccessDenied"));
    match role {
        Some(role) if denied && line.to_ascii_lowercase().contains("iam:passrole") => {
            Error::SmsRoleNotPassable {
                pool: pool_id,
                role: role.to_owned(),
                message: line,
            }
        }
        _ => Error::Update {
            pool: pool_id,
            message: line,
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::types::SmsConfigurationType;

    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/app-sms";
    /// IAM's words when the caller may not pass a role (as Cognito relays them).
    const PASS_ROLE_DENIED: &str = "AccessDeniedException: User: \
        arn:aws:sts::123456789012:assumed-role/db-sync-PoolTriggerRole/db-sync-PoolTrigger is \
        not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/app-sms \
        because no identity-based policy allows the iam:PassRole action";

    fn pool(sms_role: Option<&str>) -> UserPoolType {
        UserPoolType::builder()
            .id("us-east-1_abc")
            .set_sms_configuration(
                sms_role.map(|r| SmsConfigurationType::builder().sns_caller_arn(r).build()),
            )
            .build()
    }

    #[test]
    fn a_refused_pass_role_on_the_sms_role_names_the_parameter_that_grants_it() {
        let e = update_failure(
            &pool(Some(ROLE)),
            Some("AccessDeniedException"),
            PASS_ROLE_DENIED.to_owned(),
        );
        assert!(matches!(e, Error::SmsRoleNotPassable { .. }), "{e:?}");
        let answer = e.to_string();
        for part in ["UserPoolSmsRoleArn", ROLE, "iam:PassRole", "us-east-1_abc"] {
            assert!(answer.contains(part), "{part}: {answer}");
        }
    }

    #[test]
    fn other_update_failures_keep_their_own_message() {
        for (sms_role, code, line) in [
            // No SMS role on the pool: the parameter would not help.
            (None, "AccessDeniedException", PASS_ROLE_DENIED),
            // Denied, but not PassRole: the function's own grant on the pool.
            (
                Some(ROLE),
                "AccessDeniedException",
                "AccessDeniedException: not authorized to perform: cognito-idp:UpdateUserPool",
            ),
            // Not a denial at all.
            (
                Some(ROLE),
                "InvalidParameterException",
                "InvalidParameterException: The message is invalid.",
            ),
        ] {
            let e = update_failure(&pool(sms_role), Some(code), line.to_owned());
            assert!(matches!(e, Error::Update { .. }), "{e:?}");
            assert!(!e.to_string().contains("UserPoolSmsRoleArn"), "{e}");
            assert!(e.to_string().contains(line), "{e}");
        }
    }
}
