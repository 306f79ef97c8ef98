//! The stack's own partition, region and account, read from its own function's ARN, and the
//! one kind of trigger a Delete may put back: a Lambda function there. Whatever else a pool
//! had (another account's function, another region's, not a Lambda ARN at all) is never
//! recorded, so never wired by this stack's role.

/// Where the stack runs: the partition, region and account of its own functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    partition: String,
    region: String,
    account: String,
}

impl Home {
    /// The home of `function_arn`, a Lambda function ARN (`None` for anything else).
    pub fn of(function_arn: &str) -> Option<Self> {
        let (partition, region, account) = lambda_function(function_arn)?;
        Some(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    /// Whether `arn` is a Lambda function (optionally a version or alias) of this partition,
    /// region and account: the only kind of earlier trigger recorded and put back.
    pub fn restorable(&self, arn: &str) -> bool {
        lambda_function(arn).is_some_and(|(partition, region, account)| {
            (partition, region, account)
                == (
                    self.partition.as_str(),
                    self.region.as_str(),
                    self.account.as_str(),
                )
        })
    }
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<version or alias>]`, as
/// Lambda names them: the partition, region and account.
fn lambda_function(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name] => (*name, None),
        ["arn", _, "lambda", _, _, "function", name, qualifier] => (*name, Some(*qualifier)),
        _ => return None,
    };
    let (partition, region, account) = (parts[1], parts[3], parts[4]);
    let word = |s: &str, max: usize, extra: &[char]| {
        (1..=max).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(&c))
    };
    let lower = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let ok = lower(partition)
        && partition.starts_with("aws")
        && lower(region)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && word(name, 64, &[])
        && qualifier.is_none_or(|q| word(q, 128, &['$']));
    ok.then_some((partition, region, account))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PostConfirmation";

    #[test]
    fn only_a_lambda_function_of_the_same_partition_region_and_account_is_restorable() {
        let home = Home::of(OURS).unwrap();
        for arn in [
            "arn:aws:lambda:us-east-1:123456789012:function:app-pre-sign-up",
            "arn:aws:lambda:us-east-1:123456789012:function:app:live",
            "arn:aws:lambda:us-east-1:123456789012:function:app:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:app:7",
        ] {
            assert!(home.restorable(arn), "{arn}");
        }
        for arn in [
            "arn:aws:lambda:us-east-1:999999999999:function:evil",
            "arn:aws:lambda:eu-west-1:123456789012:function:app",
            "arn:aws-cn:lambda:us-east-1:123456789012:function:app",
            "arn:aws:sns:us-east-1:123456789012:function:app",
            "arn:aws:lambda:us-east-1:123456789012:layer:app",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:123456789012:function:app:live:extra",
            "arn:aws:lambda:us-east-1:123456789012:function:app/x",
            "arn:aws:lambda:us-east-1:12345678901:function:app",
            "arn:aws:lambda:us-east-1:123456789012:function:app name",
            "app-pre-sign-up",
            "",
        ] {
            assert!(!home.restorable(arn), "{arn}");
        }
    }

    #[test]
    fn a_home_is_read_only_from_a_lambda_function_arn() {
        assert!(Home::of(OURS).is_some());
        assert_eq!(Home::of("db-sync-PostConfirmation"), None);
        assert_eq!(
            Home::of("arn:aws:lambda:us-east-1:123456789012:layer:x"),
            None
        );
    }
}
