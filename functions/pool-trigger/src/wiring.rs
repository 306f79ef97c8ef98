//! Create, Update and Delete: wiring the stack's function into the pool as the resource's
//! trigger, and taking it out again. Each trigger may be set only to the one function its
//! environment variable names ([`crate::Functions`]), and has its own physical id and pool
//! tags; the other trigger is carried over as the pool has it at that moment, like every other
//! setting.
//!
//! - Create: `DescribeUserPool`, then `UpdateUserPool` with every setting carried over
//!   ([`crate::settings`]) and the resource's trigger set to our function. A pool that already
//!   has another function as that trigger is refused unless `ReplaceExistingTrigger` is
//!   `"true"`; the trigger it had, if a Lambda function of the stack's account and region
//!   ([`crate::home`]), is recorded in the signed physical id ([`crate::physical_id`]).
//! - Update: the same on the same pool and trigger, under the same physical id. Another pool
//!   or another trigger (or an id this function did not sign) is a new resource: a new id, and
//!   CloudFormation then deletes the old one (which restores what it had wired).
//! - Delete: only for an id this function signed: puts the earlier trigger it records back (or
//!   none), if the pool still points at our function there. An id in the previous version's
//!   unsigned shape takes ours out and puts nothing back, unless the pool was wired under a
//!   signed id. Any other id changes nothing, and the answer is SUCCESS all the same, so a
//!   stack's delete never stops on it.

use aws_sdk_cognitoidentityprovider::{Client, error::ProvideErrorMetadata, types::UserPoolType};
use custom_resource::{Answered, Outcome, ProtocolError, Request, RequestType};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{
    Error, Functions, PoolLayout, Properties, State, created_pool,
    physical_id::{PhysicalId, Wired},
    pool_triggers::{self, Record},
    record_key::KeySource,
    settings,
    trigger::Trigger,
    update_failure,
};

/// Handles one custom-resource request; the answer always reaches CloudFormation unless the
/// request names nowhere to send it.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answered, ProtocolError> {
    state
        .responder
        .handle(event, async |request| {
            apply(&state.cognito, &state.functions, &state.record_key, request).await
        })
        .await
}

/// Does what `request` asks of the pool.
pub async fn apply(
    cognito: &Client,
    functions: &Functions,
    key: &KeySource,
    request: &Request,
) -> Result<Outcome, Error> {
    // Each layout serves its own resources only: a stack that created its pool has no
    // trigger resources (and no id of the previous version's), one on an existing pool no
    // created-pool resource. A request of the other kind is refused, or on Delete ignored.
    match (created_pool::is_for(request), functions.layout) {
        (true, PoolLayout::Created) => {
            return created_pool::apply(cognito, functions, key, request).await;
        }
        (false, PoolLayout::Existing) => {}
        (_, layout) => {
            let physical = request.physical_resource_id.as_deref().unwrap_or_default();
            if request.request_type == RequestType::Delete {
                tracing::warn!(
                    physical,
                    ?layout,
                    "a Delete for a resource this stack's layout does not have; nothing changed"
                );
                return Ok(Outcome::new(physical));
            }
            return Err(Error::WrongLayout(layout));
        }
    }
    let physical = request.physical_resource_id.as_deref().unwrap_or_default();
    match request.request_type {
        RequestType::Create => {
            let props = Properties::from_request(request, functions)?;
            attach(cognito, functions, key, &props).await
        }
        RequestType::Update => {
            let props = Properties::from_request(request, functions)?;
            // Our function as it was before the update is ours too, not a stranger's.
            let ours: Vec<&str> = request.old_property("FunctionArn").into_iter().collect();
            let same = |w: &Wired| w.pool_id == props.user_pool_id && w.trigger == props.trigger;
            match PhysicalId::parse(physical) {
                Some(id @ PhysicalId::Signed { .. }) => match id.verified(key.get().await?) {
                    Some(wired) if same(wired) => {
                        rewire(cognito, &props, &ours, Record::Signed).await?;
                        Ok(outcome(physical, wired))
                    }
                    _ => attach(cognito, functions, key, &props).await,
                },
                // A stack made by the previous version keeps its id (a new one would make
                // CloudFormation delete the old, taking ours out); it records nothing to put
                // back.
                Some(PhysicalId::Unsigned(wired)) if same(&wired) => {
                    rewire(cognito, &props, &ours, Record::Kept).await?;
                    let nothing = Wired {
                        previous: None,
                        ..wired
                    };
                    Ok(outcome(physical, &nothing))
                }
                _ => attach(cognito, functions, key, &props).await,
            }
        }
        RequestType::Delete => {
            // The id, not the properties, says which trigger was wired: it is what the
            // Create did, and a Delete after a failed Create must find nothing to undo even
            // when its properties are the ones that failed.
            match PhysicalId::parse(physical) {
                Some(id @ PhysicalId::Signed { .. }) => match id.verified(key.get().await?) {
                    Some(wired) => {
                        let restore = wired
                            .previous
                            .clone()
                            .filter(|arn| functions.home.restorable(arn));
                        let ours = functions.allowed(wired.trigger)?;
                        detach(cognito, wired, ours, restore).await?;
                    }
                    None => tracing::warn!(
                        physical,
                        "a Delete for an id this stack did not sign; nothing changed"
                    ),
                },
                Some(PhysicalId::Unsigned(wired)) => {
                    let ours = functions.allowed(wired.trigger)?;
                    detach_unsigned(cognito, &wired, ours).await?;
                }
                None => {
                    tracing::info!(physical, "nothing was wired under this id; nothing to undo")
                }
            }
            Ok(Outcome::new(physical))
        }
    }
}

/// Sets our trigger on a pool not wired before; the trigger it had, if restorable, is
/// recorded in the signed id.
async fn attach(
    cognito: &Client,
    functions: &Functions,
    key: &KeySource,
    props: &Properties,
) -> Result<Outcome, Error> {
    // Read before anything is written: without it no id can be made.
    let key = key.get().await?;
    let pool = describe(cognito, &props.user_pool_id).await?;
    let replaced = check_current(&pool, props, &[])?;
    let previous = replaced.filter(|arn| {
        let restorable = functions.home.restorable(arn);
        if !restorable {
            tracing::warn!(pool = %props.user_pool_id, trigger = %props.trigger, replaced = %arn,
                "the trigger replaced is not a Lambda function of this account and region; it is not recorded, and will not be put back");
        }
        restorable
    });
    let function = Some(props.function_arn.clone());
    update(cognito, &pool, props.trigger, function, Record::Signed).await?;
    let wired = Wired {
        pool_id: props.user_pool_id.clone(),
        trigger: props.trigger,
        previous,
    };
    Ok(outcome(&wired.signed_id(key), &wired))
}

/// Sets our (possibly new) function on a pool wired before, under the same id.
async fn rewire(
    cognito: &Client,
    props: &Properties,
    ours: &[&str],
    record: Record,
) -> Result<(), Error> {
    let pool = describe(cognito, &props.user_pool_id).await?;
    check_current(&pool, props, ours)?;
    let function = Some(props.function_arn.clone());
    update(cognito, &pool, props.trigger, function, record).await
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

/// Puts `restore` back as `wired`'s trigger if the pool still points at our function there.
/// If someone has set another function since, theirs stays. A pool that is gone has nothing
/// to restore.
async fn detach(
    cognito: &Client,
    wired: &Wired,
    ours: &str,
    restore: Option<String>,
) -> Result<(), Error> {
    let Some(pool) = describe_if_there(cognito, &wired.pool_id).await? else {
        return Ok(());
    };
    restore_if_ours(cognito, &pool, wired.trigger, ours, restore).await
}

/// A Delete for the previous version's unsigned id: it names its earlier trigger where anyone
/// could have written it, so ours is taken out and nothing is put back; and only if the pool
/// was not wired under a signed id, for which this id would be a forgery.
async fn detach_unsigned(cognito: &Client, wired: &Wired, ours: &str) -> Result<(), Error> {
    let Some(pool) = describe_if_there(cognito, &wired.pool_id).await? else {
        return Ok(());
    };
    let trigger = wired.trigger;
    if pool_triggers::wired_under_signed_id(&pool, trigger) {
        tracing::warn!(pool = %wired.pool_id, %trigger,
            "a Delete for an unsigned id, but the pool was wired under a signed one; nothing changed");
        return Ok(());
    }
    tracing::warn!(pool = %wired.pool_id, %trigger,
        claimed = wired.previous.as_deref().unwrap_or("none"),
        tagged = pool_triggers::legacy_previous(&pool, trigger).unwrap_or("none"),
        "an id made by the previous version: its earlier trigger is not trusted and not put back; set it again by hand if it was yours");
    restore_if_ours(cognito, &pool, trigger, ours, None).await
}

/// Sets `trigger` to `restore` (or none) if the pool still points at our function there.
pub(crate) async fn restore_if_ours(
    cognito: &Client,
    pool: &UserPoolType,
    trigger: Trigger,
    ours: &str,
    restore: Option<String>,
) -> Result<(), Error> {
    let pool_id = pool.id.as_deref().unwrap_or_default();
    let current = pool_triggers::current(pool, trigger);
    if current == Some(ours) {
        let restored = restore.clone().unwrap_or_else(|| "none".to_owned());
        update(cognito, pool, trigger, restore, Record::Cleared).await?;
        tracing::info!(pool = pool_id, %trigger, restored, "trigger restored");
    } else {
        tracing::warn!(pool = pool_id, %trigger, current = current.unwrap_or("none"),
            "the pool no longer points at our function; left as it is");
    }
    Ok(())
}

/// The answer: `physical` as the id, and as `Data` (for `Fn::GetAtt`) the pool, the trigger
/// and `Previous<Trigger>`, e.g. `PreviousPostConfirmation`: the trigger Delete puts back.
fn outcome(physical: &str, wired: &Wired) -> Outcome {
    Outcome::new(physical)
        .with("UserPoolId", wired.pool_id.clone())
        .with("Trigger", wired.trigger.as_str())
        .with(
            &format!("Previous{}", wired.trigger),
            wired.previous.clone().unwrap_or_default(),
        )
}

/// The pool, or `None` when it is gone (a Delete then has nothing to restore).
pub(crate) async fn describe_if_there(
    cognito: &Client,
    pool_id: &str,
) -> Result<Option<UserPoolType>, Error> {
    match describe(cognito, pool_id).await {
        Err(Error::PoolNotFound(_)) => {
            tracing::warn!(pool = %pool_id, "the user pool is gone; nothing to restore");
            Ok(None)
        }
        other => other.map(Some),
    }
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
    record: Record,
) -> Result<(), Error> {
    settings::carry_over(cognito.update_user_pool(), pool, trigger, function, record)
        .send()
        .await
        .map_err(|e| update_failure(pool, e.code(), shared::aws::error_line(&e)))?;
    Ok(())
}
