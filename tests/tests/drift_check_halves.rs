//! drift-check end to end, deployed with one half (`DRIFT_CHECKS`, docs/deploying.md "Which
//! parts"): a stack with a pool and no managed group runs the users half only and looks at no
//! security group, even one the rows name; a stack with a group and no pool runs the rules
//! half only and starts without `USER_POOL_ID`. Against the shared Postgres and moto, in a
//! world with drift of both kinds, where a run of both halves finds both.

use harness::{Function, fixtures::function_env, function_binary};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
use drift::{counts, drifted_world};

/// The rules half's kinds (missing, changed, unexpected) and the users half's (missing_user,
/// orphan_user) a summary counts.
fn found(summary: &Value) -> (u64, u64) {
    let [missing, changed, unexpected, missing_user, orphan_user] = counts(summary);
    (missing + changed + unexpected, missing_user + orphan_user)
}

#[tokio::test]
async fn each_half_runs_only_where_drift_checks_names_it() {
    let (w, group, _lost) = drifted_world().await;
    let before = w.ingress(&group).await;

    // Both halves (unset, as before the parts): drift of both kinds is found.
    let both = w.start(&[("SECURITY_GROUP_IDS", &group)]).await;
    let summary = both.invoke(&json!({})).await.response().clone();
    let (rules, users) = found(&summary);
    assert!(rules > 0 && users > 0, "{summary:#}");

    // The users half alone: no security group is checked, not even the one the rows name
    // (with SECURITY_GROUP_IDS unset a run would otherwise check exactly that group).
    let f = w.start(&[("DRIFT_CHECKS", "users")]).await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(found(&summary), (0, users), "{summary:#}");
    // A CloudTrail event on the group starts a run that checks nothing.
    let event = json!({
        "source": "aws.ec2",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventSource": "ec2.amazonaws.com",
            "eventName": "AuthorizeSecurityGroupIngress",
            "requestParameters": {"groupId": group},
        },
    });
    let summary = f.invoke(&event).await.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(found(&summary), (0, 0), "{summary:#}");

    // The rules half alone, with no pool at all: it starts, and checks the group only.
    let env = function_env(
        &w.db,
        &w.moto,
        &[("DRIFT_CHECKS", "rules"), ("SECURITY_GROUP_IDS", &group)],
    );
    assert!(!env.iter().any(|(k, _)| k == "USER_POOL_ID"), "{env:?}");
    let f = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(found(&summary), (rules, 0), "{summary:#}");

    // Report runs, all of them: the group is as it was.
    assert_eq!(w.ingress(&group).await, before);
}
