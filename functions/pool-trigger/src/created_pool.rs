//! The pool the stack creates, on the stack's delete: CloudFormation wires that pool's
//! triggers itself (its `LambdaConfig`) and retains the pool when the stack is deleted, so
//! without this the kept pool would name the deleted functions, and every sign-up on it would
//! fail. The resource (`Purpose: ClearOurTriggersOnDelete`) changes nothing on Create and
//! Update; its Delete takes our PostAuthentication (the sign-in guard), PreSignUp and
//! PostConfirmation out of the pool, each only if it still names our function, with every other setting carried over ([`crate::settings`]).
//!
//! Its physical id, `<pool id>/created-pool/<signature>`, is signed with the record key like
//! the trigger resources' ([`crate::physical_id`]), under its own domain: a Delete naming any
//! other pool, or an id this function did not sign, changes nothing.

use aws_sdk_cognitoidentityprovider::Client;
use custom_resource::{Outcome, Request, RequestType};

use crate::{
    Error, Functions,
    properties::valid_pool_id,
    record_key::{KeySource, RecordKey},
    trigger::Trigger,
    wiring::{describe_if_there, restore_if_ours},
};

/// The `Purpose` property's value that makes a request this resource's.
pub const PURPOSE: &str = "ClearOurTriggersOnDelete";
/// The middle part of the id; no trigger's mark ([`Trigger::id_mark`]) is the same.
const MARK: &str = "created-pool";
/// What the signature covers besides the pool, so that it means nothing anywhere else.
const DOMAIN: &str = "db-sync pool-trigger created pool v1";

/// Whether `request` is this resource's: by its id on Delete (what the Create made), by its
/// `Purpose` property otherwise.
pub fn is_for(request: &Request) -> bool {
    match request.request_type {
        RequestType::Delete => request
            .physical_resource_id
            .as_deref()
            .and_then(parse)
            .is_some(),
        _ => request.property("Purpose") == Some(PURPOSE),
    }
}

/// The signed id for `pool`.
pub fn signed_id(pool: &str, key: &RecordKey) -> String {
    format!("{pool}/{MARK}/{}", key.sign(&format!("{DOMAIN}\n{pool}")))
}

/// The pool and signature of an id of this shape.
fn parse(id: &str) -> Option<(&str, &str)> {
    match id.split('/').collect::<Vec<_>>().as_slice() {
        [pool, MARK, signature] if !pool.is_empty() && !signature.is_empty() => {
            Some((*pool, *signature))
        }
        _ => None,
    }
}

/// The pool an id names, if `key` signed it.
pub fn verified<'i>(id: &'i str, key: &RecordKey) -> Option<&'i str> {
    let (pool, signature) = parse(id)?;
    key.verifies(&format!("{DOMAIN}\n{pool}"), signature)
        .then_some(pool)
}

/// Does what `request` asks: Create and Update sign the pool's id; Delete clears our triggers.
pub async fn apply(
    cognito: &Client,
    functions: &Functions,
    key: &KeySource,
    request: &Request,
) -> Result<Outcome, Error> {
    let physical = request.physical_resource_id.as_deref().unwrap_or_default();
    if request.request_type == RequestType::Delete {
        match verified(physical, key.get().await?) {
            Some(pool) => clear(cognito, functions, pool).await?,
            None => tracing::warn!(
                physical,
                "a Delete for a created-pool id this stack did not sign; nothing changed"
            ),
        }
        return Ok(Outcome::new(physical));
    }
    let pool = request
        .property("UserPoolId")
        .filter(|p| valid_pool_id(p))
        .ok_or(Error::BadProperty {
            name: "UserPoolId",
            reason: "expected <region>_<id>".into(),
        })?;
    // The same pool keeps its id (CloudFormation replaces nothing); another gets a new one,
    // and CloudFormation's Delete of the old one clears the old pool.
    Ok(Outcome::new(signed_id(pool, key.get().await?)).with("UserPoolId", pool))
}

/// Takes our functions out of `pool`'s PostAuthentication, PreSignUp and PostConfirmation,
/// each only where the pool still names ours; a pool that is gone has nothing to clear.
async fn clear(cognito: &Client, functions: &Functions, pool_id: &str) -> Result<(), Error> {
    for trigger in [
        Trigger::PostAuthentication,
        Trigger::PreSignUp,
        Trigger::PostConfirmation,
    ] {
        let Ok(ours) = functions.allowed(trigger) else {
            continue;
        };
        // Read again for each: the first write changed the pool the second carries over.
        let Some(pool) = describe_if_there(cognito, pool_id).await? else {
            return Ok(());
        };
        restore_if_ours(cognito, &pool, trigger, ours, None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RecordKey {
        RecordKey::new(vec![byte; 64]).unwrap()
    }

    #[test]
    fn an_id_verifies_only_for_its_own_pool_under_its_own_key() {
        let id = signed_id("us-east-1_abc", &key(1));
        assert!(id.starts_with("us-east-1_abc/created-pool/"), "{id}");
        assert_eq!(verified(&id, &key(1)), Some("us-east-1_abc"));
        assert_eq!(verified(&id, &key(2)), None);
        let (_, signature) = id.rsplit_once('/').unwrap();
        for forged in [
            format!("us-east-1_xyz/created-pool/{signature}"),
            "us-east-1_abc/created-pool/AAAA".to_owned(),
            "us-east-1_abc/created-pool".to_owned(),
            format!("us-east-1_abc/post-confirmation/{signature}"),
            format!("us-east-1_abc/created-pool/{signature}/x"),
        ] {
            assert_eq!(verified(&forged, &key(1)), None, "{forged}");
        }
    }

    /// A trigger resource's id never reads as this one's, nor the other way round.
    #[test]
    fn the_trigger_ids_and_this_one_never_read_as_each_other() {
        let id = signed_id("us-east-1_abc", &key(1));
        assert_eq!(crate::physical_id::PhysicalId::parse(&id), None);
        for t in Trigger::ALL {
            assert_ne!(t.id_mark(), MARK);
        }
    }
}
