//! Create, Update and Delete: wiring the stack's function into the pool as the resource's
//! trigger, and taking it out again. Each trigger may be set only to the one function its
//! environment variable names ([`crate::Functions`]), and has its own physical id and pool
//! tag; the other trigger is carried over as the pool has it at that moment, like every other
//! setting.
//!
//! - Create: `DescribeUserPool`, then `UpdateUserPool` with every setting carried over
//!   ([`crate::settings`]) and the resource's trigger set to our function. A pool that already
//!   has another function as that trigger is refused unless `ReplaceExistingTrigger` is
//!   `"true"`; the trigger it had is kept in the physical id ([`crate::physical_id`]) and in
//!   the pool's tag.
//! - Update: the same on the same pool and trigger, under the same physical id. Another pool
//!   or another trigger is a new resource: a new id, and CloudFormation then deletes the old
//!   one (which restores what it had wired).
//! - Delete: puts the earlier trigger of that kind back (or none), if the pool still points
//!   at our function there; every other setting is carried over as it is then.

use aws_sdk_cognitoidentityprovider::{Client, error::ProvideErrorMetadata, types::UserPoolType};
use custom_resource::{Answered, Outcome, ProtocolError, Request, RequestType};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{
    Error, Functions, Properties, State, physical_id::Wired, pool_triggers, settings,
    trigger::Trigger, update_failure,
};

/// Handles one custom-resource request; the answer always reaches CloudFormation unless the
/// request names nowhere to send it.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answered, ProtocolError> {
    state
        .responder
        .handle(event, async |request| {
            apply(&state.cognito, &state.functions, request).await
        })
        .await
}

/// Does what `request` asks of the pool.
pub async fn apply(
    cognito: &Client,
    functions: &Functions,
    request: &Request,
) -> Result<Outcome, Error> {
    let physical = request.physical_resource_id.as_deref();
    match request.request_type {
        RequestType::Create => {
            attach(cognito, &Properties::from_request(request, functions)?, &[]).await
        }
        RequestType::Update => {
            let props = Properties::from_request(request, functions)?;
            match physical.and_then(Wired::parse) {
                Some(wired)
                    if wired.pool_id == props.user_pool_id && wired.trigger == props.trigger =>
                {
                    // Our function as it was before the update is ours too, not a stranger's.
                    let ours: Vec<&str> = request.old_property("FunctionArn").into_iter().collect();
                    rewire(cognito, &props, wired, &ours).await
                }
                _ => attach(cognito, &props, &[]).await,
            }
        }
        RequestType::Delete => {
            let physical = physical.unwrap_or_default();
            // The id, not the properties, says which trigger was wired: it is what the
            // Create did, and a Delete after a failed Create must find nothing to undo even
            // when its properties are the ones that failed.
            match Wired::parse(physical) {
                Some(wired) => detach(cognito, &wired, functions.allowed(wired.trigger)?).await?,
                None => {
                    tracing::info!(physical, "nothing was wired under this id; nothing to undo")
                }
            }
            Ok(Outcome::new(physical))
        }
    }
}

/// Sets our trigger on a pool not wired before; the trigger it had goes into the id.
async fn attach(cognito: &Client, props: &Properties, ours: &[&str]) -> Result<Outcome, Error> {
    let pool = describe(cognito, &props.user_pool_id).await?;
    let previous = check_current(&pool, props, ours)?;
    // The trigger to put back on Delete is kept in the pool itself: a Delete request (or
    // anyone invoking this function) could name any ARN in the physical id.
    let remembered = previous
        .clone()
        .or_else(|| pool_triggers::remembered_trigger(&pool, props.trigger));
    let function = Some(props.function_arn.clone());
    update(cognito, &pool, props.trigger, function, remembered).await?;
    let wired = Wired {
        pool_id: props.user_pool_id.clone(),
        trigger: props.trigger,
        previous,
    };
    Ok(outcome(&wired))
}

/// Sets our (possibly new) function on a pool wired before, keeping the id and what it holds.
async fn rewire(
    cognito: &Client,
    props: &Properties,
    wired: Wired,
    ours: &[&str],
) -> Result<Outcome, Error> {
    let pool = describe(cognito, &props.user_pool_id).await?;
    check_current(&pool, props, ours)?;
    let remembered = pool_triggers::remembered_trigger(&pool, props.trigger);
    let function = Some(props.function_arn.clone());
    update(cognito, &pool, props.trigger, function, remembered).await?;
    Ok(outcome(&wired))
}

/// The pool's trigger (of the resource's kind) before ours, when it may be replaced; an error
/// when it may not.
fn check_current(
    pool: &UserPoolType,
    props: &Properties,
    ours: &[&str],
) -> Result<Option<String>, Error> {
    match pool_triggers::current(pool, props.trigger) {
        None => Ok(None),
        Some(current) if current == props.function_arn || ours.contains(&current) => Ok(None),
        Some(current) if props.replace_existing => Ok(Some(current.to_owned())),
        Some(current) => Err(Error::OtherTrigger {
            pool: props.user_pool_id.clone(),
            trigger: props.trigger,
            current: current.to_owned(),
        }),
    }
}

/// Puts the earlier trigger of `wired`'s kind back if the pool still points at our function
/// there. If someone has set another function since, theirs stays. A pool that is gone has
/// nothing to restore.
async fn detach(cognito: &Client, wired: &Wired, ours: &str) -> Result<(), Error> {
    let pool = match describe(cognito, &wired.pool_id).await {
        Err(Error::PoolNotFound(_)) => {
            tracing::warn!(pool = %wired.pool_id, "the user pool is gone; nothing to restore");
            return Ok(());
        }
        other => other?,
    };
    let trigger = wired.trigger;
    let current = pool_triggers::current(&pool, trigger);
    if current == Some(ours) {
        // What the pool itself remembers, never what the request's physical id names.
        let previous = pool_triggers::remembered_trigger(&pool, trigger);
        if wired.previous.is_some() && wired.previous != previous {
            tracing::warn!(pool = %wired.pool_id, %trigger, claimed = wired.previous.as_deref().unwrap_or("none"),
                "the physical id names a previous trigger the pool does not remember; not restored");
        }
        update(cognito, &pool, trigger, previous.clone(), None).await?;
        tracing::info!(pool = %wired.pool_id, %trigger, restored = previous.as_deref().unwrap_or("none"), "trigger restored");
    } else {
        tracing::warn!(pool = %wired.pool_id, %trigger, current = current.unwrap_or("none"), "the pool no longer points at our function; left as it is");
    }
    Ok(())
}

/// The answer's `Data` (for `Fn::GetAtt`): `Previous<Trigger>`, e.g.
/// `PreviousPostConfirmation`, is the trigger the pool had before.
fn outcome(wired: &Wired) -> Outcome {
    Outcome::new(wired.to_string())
        .with("UserPoolId", wired.pool_id.clone())
        .with("Trigger", wired.trigger.as_str())
        .with(
            &format!("Previous{}", wired.trigger),
            wired.previous.clone().unwrap_or_default(),
        )
}

async fn describe(cognito: &Client, pool_id: &str) -> Result<UserPoolType, Error> {
    let answer = cognito
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                Error::PoolNotFound(pool_id.to_owned())
            } else {
                Error::Describe {
                    pool: pool_id.to_owned(),
                    message: shared::aws::error_line(&e),
                }
            }
        })?;
    answer
        .user_pool
        .ok_or_else(|| Error::PoolNotFound(pool_id.to_owned()))
}

async fn update(
    cognito: &Client,
    pool: &UserPoolType,
    trigger: Trigger,
    function: Option<String>,
    remember: Option<String>,
) -> Result<(), Error> {
    settings::carry_over(
        cognito.update_user_pool(),
        pool,
        trigger,
        function,
        remember,
    )
    .send()
    .await
    .map_err(|e| update_failure(pool, e.code(), shared::aws::error_line(&e)))?;
    Ok(())
}
