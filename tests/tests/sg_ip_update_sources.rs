//! Each deployed sg-ip-update function takes only its own kind of event: the bus function
//! (`SgIpUpdateBusFunction`) refuses a payload shaped like a Function URL request, whose
//! identity anyone allowed `lambda:InvokeFunction` could have written; the Function URL's
//! function refuses bus envelopes and bare requests. Each function is started here with the
//! settings template.yaml gives it.

use harness::{Function, Outcome, function_binary};
use serde_json::json;

mod common;
#[path = "common/sg.rs"]
mod sg;
use sg::{ANDREW, Fixture, change, http, url_change};

/// The literal environment variables template.yaml gives `function` (those that are not a
/// `!Ref` or `!If`): what the function is deployed with beyond its database and group.
fn template_settings(function: &str) -> Vec<(String, String)> {
    let t = common::template();
    let vars = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
    let serde_norway::Value::Mapping(vars) = vars else {
        panic!("{function} has no Environment.Variables")
    };
    vars.iter()
        .filter_map(|(k, v)| match v {
            serde_norway::Value::String(v) => Some((k.as_str()?.to_owned(), v.clone())),
            _ => None,
        })
        .collect()
}

/// sg-ip-update with exactly the environment the template gives `function`, this test's
/// database and group in place of the stack's.
async fn start_as(fx: &Fixture, function: &str) -> Function {
    let mut env: Vec<(String, String)> = fx
        .env()
        .into_iter()
        .filter(|(k, _)| k != "SG_IP_UPDATE_SOURCE")
        .collect();
    env.extend(template_settings(function));
    Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap()
}

/// Reproduces issue 37 item 1: the bus function, handed the sample Function URL request naming
/// andrew's principal, moved andrew's rule. Now it is refused (answered, so Lambda does not
/// retry it), audited without the claimed identity as its caller, and nothing moves.
#[tokio::test]
async fn a_function_url_request_handed_to_the_bus_function_is_refused_and_moves_nothing() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    let before = fx.andrews_state().await;
    let bus = start_as(&fx, "SgIpUpdateBusFunction").await;

    let forged = url_change(Some(ANDREW), "andrew", "52.14.99.8");
    let inv = bus.invoke(&forged).await;
    assert_eq!(
        fx.andrews_state().await,
        before,
        "the bus function moved andrew's rule for a payload anyone may write: {:?}",
        inv.outcome
    );
    let Outcome::Response(answer) = &inv.outcome else {
        panic!(
            "a refusal is answered, not an error Lambda retries: {:?}",
            inv.outcome
        )
    };
    assert_eq!(
        (&answer["outcome"], &answer["error"]),
        (&json!("refused"), &json!("Permanent.WrongSource")),
        "{answer}"
    );

    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].outcome, "refused_unauthorized", "{audit:?}");
    assert_eq!(audit[0].owner, "andrew", "{audit:?}");
    assert_eq!(
        audit[0].caller_arn, None,
        "a claimed identity is not recorded as a caller AWS proved"
    );
    let detail = audit[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains(ANDREW),
        "the claim is kept for review: {detail}"
    );

    // Its own kinds of event still move a row that takes unverified requests.
    fx.add_owner("bea", None, None, false).await;
    assert_eq!(
        bus.invoke(&change("bea", "52.14.99.8")).await.response()["outcome"],
        "applied"
    );
    assert_eq!(
        bus.invoke(&json!({"owner": "bea", "ip": "18.204.3.77"}))
            .await
            .response()["outcome"],
        "applied"
    );
}

/// The Function URL's function takes only Function URL requests: a bus envelope or a bare
/// request (which prove no sender) is refused even for a row that takes unverified requests,
/// answered over HTTP, audited, and moves nothing.
#[tokio::test]
async fn the_function_url_function_refuses_bus_envelopes_and_bare_requests() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(true).await;
    let before = fx.andrews_state().await;
    let url = start_as(&fx, "SgIpUpdateFunction").await;

    for request in [
        change("andrew", "52.14.99.8"),
        json!({"owner": "andrew", "ip": "52.14.99.8"}),
    ] {
        let inv = url.invoke(&request).await;
        assert_eq!(fx.andrews_state().await, before, "{request}");
        let (status, body) = http(&inv);
        assert_eq!(
            (status, &body["error"]),
            (403, &json!("Permanent.WrongSource")),
            "{body}"
        );
    }
    let outcomes: Vec<(String, Option<String>)> = fx
        .audit_callers()
        .await
        .into_iter()
        .map(|a| (a.outcome, a.via))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("refused_unauthorized".into(), Some("eventbridge".into())),
            ("refused_unauthorized".into(), Some("direct".into())),
        ]
    );

    // Andrew's own signed request still moves it.
    let (status, body) = http(
        &url.invoke(&url_change(Some(ANDREW), "andrew", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("applied")),
        "{body}"
    );
}

/// The setting is required: a function started without it, or with a value it does not know,
/// stops at its cold start naming the variable.
#[tokio::test]
async fn without_its_source_the_function_stops_at_cold_start_naming_the_setting() {
    let fx = Fixture::shared().await;
    let base: Vec<(String, String)> = fx
        .env()
        .into_iter()
        .filter(|(k, _)| k != "SG_IP_UPDATE_SOURCE")
        .collect();
    for value in [None, Some("both"), Some("")] {
        let mut env = base.clone();
        if let Some(v) = value {
            env.push(("SG_IP_UPDATE_SOURCE".into(), v.into()));
        }
        let f = Function::spawn(&function_binary("sg-ip-update"), &env)
            .await
            .unwrap();
        let inv = f.invoke(&change("andrew", "52.14.99.8")).await;
        match &inv.outcome {
            Outcome::Exited(detail) => {
                assert!(
                    detail.contains("SG_IP_UPDATE_SOURCE"),
                    "{value:?}: {detail}"
                )
            }
            other => panic!("{value:?}: expected the cold start to stop, got {other:?}"),
        }
    }
}
