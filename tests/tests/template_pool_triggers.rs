//! template.yaml's pool triggers, with its conditions evaluated for the parameters a deploy
//! gives: an existing pool keeps its own PreSignUp unless `PreSignUpOnExistingPool` asks for
//! ours, each trigger has its own replace flag, and a pool the stack creates gets both
//! triggers and the resource that takes them out of it when the stack is deleted.

use std::collections::BTreeMap;

use serde_norway::Value;

mod common;
use common::{get_att_arn, is_ref_to, tagged, template, untag};

const POOL: &str = "us-east-1_AppPool1";

/// The parameters of a deploy: the template's defaults, with `given` over them.
fn params<'t>(t: &'t Value, given: &[(&'t str, &'t str)]) -> BTreeMap<&'t str, &'t str> {
    let Value::Mapping(ps) = &t["Parameters"] else {
        panic!("Parameters")
    };
    let mut out: BTreeMap<&str, &str> = ps
        .iter()
        .map(|(k, v)| (k.as_str().unwrap(), v["Default"].as_str().unwrap_or("")))
        .collect();
    out.extend(given.iter().copied());
    out
}

/// Whether the template's condition `name` holds for `p`.
fn condition(t: &Value, name: &str, p: &BTreeMap<&str, &str>) -> bool {
    holds(t, &t["Conditions"][name], p)
}

fn holds(t: &Value, c: &Value, p: &BTreeMap<&str, &str>) -> bool {
    let value = |v: &Value| -> Option<String> {
        match tagged(v) {
            Some((tag, name)) if tag == "Ref" => p.get(name.as_str()?).map(|s| (*s).to_owned()),
            // A list parameter joined: only its emptiness matters here.
            Some((tag, _)) if tag == "Join" => Some(format!("{v:?}")),
            Some(_) => None,
            None => v.as_str().map(str::to_owned),
        }
    };
    let (tag, args) = tagged(c).unwrap_or_else(|| panic!("a condition: {c:?}"));
    match tag.as_str() {
        "Not" => !holds(t, &args[0], p),
        "And" => args.as_sequence().unwrap().iter().all(|a| holds(t, a, p)),
        "Or" => args.as_sequence().unwrap().iter().any(|a| holds(t, a, p)),
        "Condition" => condition(t, args.as_str().unwrap(), p),
        "Equals" => value(&args[0]) == value(&args[1]),
        other => panic!("{other}"),
    }
}

/// Whether resource `name` is deployed for `p`.
fn exists(t: &Value, name: &str, p: &BTreeMap<&str, &str>) -> bool {
    let r = &t["Resources"][name];
    assert!(!r.is_null(), "{name}");
    r["Condition"].as_str().is_none_or(|c| condition(t, c, p))
}

/// The deployed resources whose text names the PreSignUp trigger or the pre-sign-up function:
/// what could touch a pool's PreSignUp or let a pool call ours.
fn touching_pre_sign_up(t: &Value, p: &BTreeMap<&str, &str>) -> Vec<String> {
    let Value::Mapping(rs) = &t["Resources"] else {
        panic!("Resources")
    };
    rs.iter()
        .filter_map(|(k, r)| Some((k.as_str()?, r)))
        .filter(|(name, _)| exists(t, name, p))
        // What can change a pool or let one call a function: custom resources, Cognito's own
        // resources, invoke permissions.
        .filter(|(_, r)| {
            r["Type"].as_str().is_some_and(|k| {
                k.starts_with("Custom::")
                    || k.starts_with("AWS::Cognito::")
                    || k == "AWS::Lambda::Permission"
            })
        })
        .filter(|(_, r)| {
            let text = format!("{:?}", r["Properties"]);
            text.contains("PreSignUpFunction") || text.contains("\"PreSignUp\"")
        })
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// The value of an `!If [CONDITION, A, B]` for `p`.
fn pick<'v>(t: &Value, v: &'v Value, p: &BTreeMap<&str, &str>) -> &'v Value {
    match tagged(v) {
        Some((tag, args)) if tag == "If" => {
            let name = untag(&args[0]).as_str().unwrap();
            if condition(t, name, p) {
                &args[1]
            } else {
                &args[2]
            }
        }
        _ => v,
    }
}

#[test]
fn an_existing_pool_keeps_its_own_pre_sign_up_unless_asked() {
    let t = template();
    let env = |p: &BTreeMap<&str, &str>| {
        let v = &t["Resources"]["PoolTriggerFunction"]["Properties"]["Environment"]["Variables"];
        pick(&t, &v["PRE_SIGN_UP_FUNCTION_ARN"], p).clone()
    };

    // Defaults: nothing names the pool's PreSignUp or lets the pool call ours, and pool-trigger
    // is given no PreSignUp function, so no request can wire one.
    let default = params(&t, &[("UserPoolId", POOL)]);
    assert_eq!(
        t["Parameters"]["PreSignUpOnExistingPool"]["Default"].as_str(),
        Some("false")
    );
    assert!(exists(&t, "PoolPostConfirmationTrigger", &default));
    assert!(!exists(&t, "PoolPreSignUpTrigger", &default));
    assert!(!exists(&t, "PreSignUpPermission", &default));
    assert_eq!(touching_pre_sign_up(&t, &default), Vec::<String>::new());
    assert!(is_ref_to(&env(&default), "AWS::NoValue"));
    // Replacing PostConfirmation is not asking for PreSignUp.
    let replace_post = params(
        &t,
        &[
            ("UserPoolId", POOL),
            ("ReplaceExistingPostConfirmationTrigger", "true"),
        ],
    );
    assert_eq!(
        touching_pre_sign_up(&t, &replace_post),
        Vec::<String>::new()
    );

    // Asked: wired, the pool may call it, pool-trigger may set it.
    let asked = params(
        &t,
        &[("UserPoolId", POOL), ("PreSignUpOnExistingPool", "true")],
    );
    assert!(exists(&t, "PoolPreSignUpTrigger", &asked));
    assert!(exists(&t, "PreSignUpPermission", &asked));
    assert_eq!(
        get_att_arn(&env(&asked)).as_deref(),
        Some("PreSignUpFunction")
    );
    let mut touching = touching_pre_sign_up(&t, &asked);
    touching.sort();
    assert_eq!(touching, ["PoolPreSignUpTrigger", "PreSignUpPermission"]);
}

#[test]
fn each_trigger_has_its_own_replace_flag() {
    let t = template();
    for name in [
        "ReplaceExistingPostConfirmationTrigger",
        "ReplaceExistingPreSignUpTrigger",
    ] {
        assert_eq!(
            t["Parameters"][name]["Default"].as_str(),
            Some("false"),
            "{name}"
        );
    }
    let replace =
        |resource: &str| &t["Resources"][resource]["Properties"]["ReplaceExistingTrigger"];
    assert!(is_ref_to(
        replace("PoolPostConfirmationTrigger"),
        "ReplaceExistingPostConfirmationTrigger"
    ));
    assert!(is_ref_to(
        replace("PoolPreSignUpTrigger"),
        "ReplaceExistingPreSignUpTrigger"
    ));
    // And the PostConfirmation resource never names PreSignUp.
    let post = format!("{:?}", t["Resources"]["PoolPostConfirmationTrigger"]);
    assert!(!post.contains("PreSignUp"), "{post}");
}

#[test]
fn a_created_pool_gets_both_triggers_and_the_stacks_delete_clears_them() {
    let t = template();
    let created = params(&t, &[]);
    let existing = params(
        &t,
        &[("UserPoolId", POOL), ("PreSignUpOnExistingPool", "true")],
    );
    let pool = &t["Resources"]["UserPool"];
    assert_eq!(pool["DeletionPolicy"].as_str(), Some("Retain"));
    let lc = &pool["Properties"]["LambdaConfig"];
    assert_eq!(
        get_att_arn(&lc["PreSignUp"]).as_deref(),
        Some("PreSignUpFunction")
    );
    assert!(exists(&t, "PreSignUpPermission", &created));

    // The resource whose Delete clears them: only with the created pool, served by
    // pool-trigger (which exists in both layouts), deleted before the functions it clears.
    let r = &t["Resources"]["CreatedPoolTriggers"];
    assert!(exists(&t, "CreatedPoolTriggers", &created));
    assert!(!exists(&t, "CreatedPoolTriggers", &existing));
    assert!(exists(&t, "PoolTriggerFunction", &created));
    assert!(exists(&t, "PoolTriggerRecordKey", &created));
    assert!(!exists(&t, "PoolPostConfirmationTrigger", &created));
    assert!(!exists(&t, "PoolPreSignUpTrigger", &created));
    let p = &r["Properties"];
    assert_eq!(
        get_att_arn(&p["ServiceToken"]).as_deref(),
        Some("PoolTriggerFunction")
    );
    assert!(is_ref_to(&p["UserPoolId"], "UserPool"));
    assert_eq!(p["Purpose"].as_str(), Some("ClearOurTriggersOnDelete"));
    let depends = format!("{:?}", r["DependsOn"]);
    for f in ["PostConfirmationFunction", "PreSignUpFunction"] {
        assert!(depends.contains(f), "{f}: {depends}");
    }
    // The function serves the created pool's resource there and the trigger resources on an
    // existing pool (POOL_LAYOUT), each with both functions it may clear or wire.
    let vars = &t["Resources"]["PoolTriggerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        pick(&t, &vars["POOL_LAYOUT"], &created).as_str(),
        Some("created")
    );
    assert_eq!(
        pick(&t, &vars["POOL_LAYOUT"], &existing).as_str(),
        Some("existing")
    );
    assert_eq!(
        get_att_arn(pick(&t, &vars["PRE_SIGN_UP_FUNCTION_ARN"], &created)).as_deref(),
        Some("PreSignUpFunction")
    );
}

/// The sign-in guard: on a pool the stack creates by default (its LambdaConfig names it), on
/// an existing pool only with `SignInGuardOnExistingPool=true` (through its own pool-trigger
/// resource and replace flag), nowhere with `DeploySignInGuard=false`, and none of its
/// resources without the sign-up sync.
#[test]
fn the_sign_in_guard_is_wired_where_deployed_and_opted_into() {
    let t = template();
    let guard_resources: Vec<&str> = {
        let Value::Mapping(rs) = &t["Resources"] else {
            panic!("Resources")
        };
        rs.keys()
            .filter_map(|k| k.as_str())
            .filter(|k| k.starts_with("SignInGuard") || *k == "PoolPostAuthenticationTrigger")
            .collect()
    };
    assert!(guard_resources.len() >= 7, "{guard_resources:?}");

    let created = params(&t, &[]);
    assert!(exists(&t, "SignInGuardFunction", &created));
    assert!(!exists(&t, "PoolPostAuthenticationTrigger", &created));
    let config = &t["Resources"]["UserPool"]["Properties"]["LambdaConfig"]["PostAuthentication"];
    let (tag, args) = tagged(config).unwrap();
    assert_eq!(tag, "If");
    assert_eq!(args[0].as_str(), Some("WiresSignInGuardOnCreatedPool"));
    assert!(condition(&t, "WiresSignInGuardOnCreatedPool", &created));
    assert_eq!(
        get_att_arn(&args[1]).as_deref(),
        Some("SignInGuardFunction")
    );

    let off = params(&t, &[("DeploySignInGuard", "false")]);
    let existing = params(&t, &[("UserPoolId", POOL)]);
    let opted = params(
        &t,
        &[("UserPoolId", POOL), ("SignInGuardOnExistingPool", "true")],
    );
    let no_sync = params(&t, &[("DeploySignUpSync", "false")]);
    for r in &guard_resources {
        for (label, p) in [
            ("off", &off),
            ("existing", &existing),
            ("no sync", &no_sync),
        ] {
            assert!(!exists(&t, r, p), "{r} exists ({label})");
        }
    }
    assert!(exists(&t, "SignInGuardFunction", &opted));
    assert!(exists(&t, "PoolPostAuthenticationTrigger", &opted));
    let trigger = &t["Resources"]["PoolPostAuthenticationTrigger"]["Properties"];
    assert_eq!(trigger["Trigger"].as_str(), Some("PostAuthentication"));
    assert!(is_ref_to(
        &trigger["ReplaceExistingTrigger"],
        "ReplaceExistingPostAuthenticationTrigger"
    ));
}
