//! A signed request is taken once. A Function URL request that leaves `ip` out names no
//! address: captured, and sent again from another host while AWS still accepts its signature,
//! it would move the rule there. What names one signed request is its SigV4 signature (the
//! `Authorization` header, or `X-Amz-Signature` of a pre-signed URL) with its body; where the
//! headers carry no signature, the signing time, the key and the rest of what is signed. Its
//! SHA-256 is kept per owner until AWS would refuse the signature anyway, and a request with
//! the same digest is refused as a replay.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use deadpool_postgres::ClientWrapper;

/// How long past its signing time (and any pre-signed validity) a request is remembered. AWS
/// refuses a SigV4 request signed more than five minutes away from its own clock; fifteen
/// leave room for clocks that disagree.
pub const KEPT_PAST_SIGNING: Duration = Duration::from_secs(15 * 60);

/// The longest a pre-signed URL may be valid (`X-Amz-Expires`: seven days).
const MAX_PRESIGNED: Duration = Duration::from_secs(7 * 24 * 3600);

/// What names one signed request, and until when a replay of it must be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The parts that name the request, each prefixed with its length; its SHA-256 is kept.
    pub material: Vec<u8>,
    /// Until when AWS could still accept the same signature.
    pub keep_until: SystemTime,
}

impl SignedRequest {
    /// The request as AWS handed it over, received at `now`.
    pub fn of(request: &LambdaFunctionUrlRequest, now: SystemTime) -> Self {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let query = |name: &str| request.query_string_parameters.get(name).cloned();
        let signature = header("authorization")
            .as_deref()
            .and_then(signature_of)
            .or_else(|| query("X-Amz-Signature"));
        let signed_at = header("x-amz-date").or_else(|| query("X-Amz-Date"));
        let body = request.body.as_deref().unwrap_or_default();
        let mut material = Vec::new();
        match &signature {
            // The signature covers the method, path, query, signed headers and the body's
            // hash: the same signature is the same request.
            Some(signature) => {
                for part in ["sigv4", signature.as_str(), body] {
                    push(&mut material, part);
                }
            }
            None => {
                let iam = request
                    .request_context
                    .authorizer
                    .as_ref()
                    .and_then(|a| a.iam.as_ref());
                let http = &request.request_context.http;
                let (date, token) = (header("date"), header("x-amz-security-token"));
                let parts = [
                    Some("signed-parts"),
                    iam.and_then(|i| i.access_key.as_deref()),
                    iam.and_then(|i| i.user_arn.as_deref()),
                    signed_at.as_deref(),
                    date.as_deref(),
                    token.as_deref(),
                    http.method.as_deref(),
                    request.raw_path.as_deref(),
                    request.raw_query_string.as_deref(),
                    Some(body),
                ];
                for part in parts {
                    push(&mut material, part.unwrap_or_default());
                }
                // Not a request AWS would hand over (it signs with a time): at least the
                // same delivery is not taken twice.
                if signed_at.is_none() && date.is_none() {
                    let id = request.request_context.request_id.as_deref();
                    push(&mut material, id.unwrap_or_default());
                }
            }
        }
        let valid_for = query("X-Amz-Expires")
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(Duration::ZERO, |s| {
                Duration::from_secs(s).min(MAX_PRESIGNED)
            });
        // A signing time far ahead is not one AWS accepted: it keeps the record no longer than
        // the longest a signature may be valid.
        let latest = now + MAX_PRESIGNED;
        let until = signed_at
            .as_deref()
            .and_then(amz_date)
            .map_or(now, |t| (t + valid_for).clamp(now, latest));
        Self {
            material,
            keep_until: until + KEPT_PAST_SIGNING,
        }
    }
}

fn push(material: &mut Vec<u8>, part: &str) {
    material.extend_from_slice(&(part.len() as u64).to_be_bytes());
    material.extend_from_slice(part.as_bytes());
}

/// The `Signature=` of a SigV4 `Authorization` header.
fn signature_of(authorization: &str) -> Option<String> {
    authorization
        .split([',', ' '])
        .find_map(|p| p.trim().strip_prefix("Signature="))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A SigV4 time (`20261123T090000Z`, UTC).
fn amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |from: usize, to: usize| -> Option<u64> {
        let part = &b[from..to];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let (year, month, day) = (digits(0, 4)?, digits(4, 6)?, digits(6, 8)?);
    let (hour, minute, second) = (digits(9, 11)?, digits(11, 13)?, digits(13, 15)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (y / 400, y % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + hour * 3600 + minute * 60 + second))
}

/// Records `request` as taken for `owner` in `group`: false when it already was, and AWS
/// could still accept its signature (a replay). Records past their time are deleted on the
/// way, and one of this request's own that lapsed is taken again.
pub async fn take_once(
    client: &ClientWrapper,
    group: &str,
    owner: &str,
    request: &SignedRequest,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "WITH lapsed AS (DELETE FROM public.signed_requests WHERE keep_until < now() \
               AND (security_group_id, owner, digest) <> ($1, $2, sha256($3))) \
             INSERT INTO public.signed_requests AS r (security_group_id, owner, digest, keep_until) \
             VALUES ($1, $2, sha256($3), $4) \
             ON CONFLICT (security_group_id, owner, digest) \
               DO UPDATE SET keep_until = EXCLUDED.keep_until WHERE r.keep_until < now() \
             RETURNING 1",
        )
        .await?;
    let taken = client
        .query_opt(
            &stmt,
            &[&group, &owner, &request.material, &request.keep_until],
        )
        .await?;
    Ok(taken.is_some())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    fn sample() -> Value {
        serde_json::from_str(include_str!(
            "../../../events/sg-ip-update-function-url.json"
        ))
        .unwrap()
    }

    fn signed(v: &Value, now: SystemTime) -> SignedRequest {
        SignedRequest::of(&LambdaFunctionUrlRequest::deserialize(v).unwrap(), now)
    }

    #[test]
    fn sigv4_times_are_read_as_utc() {
        // The sample's x-amz-date and its requestContext.timeEpoch.
        assert_eq!(
            amz_date("20261123T090000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_424_400))
        );
        assert_eq!(amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert_eq!(
            amz_date("20240229T235959Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_251_199))
        );
        for bad in [
            "",
            "20261123T090000",
            "2026-11-23T09:00:00Z",
            "20261323T090000Z",
            "2026112+T090000Z",
            "19691231T235959Z",
        ] {
            assert_eq!(amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_replay_from_elsewhere_is_the_same_request_and_a_new_signature_is_not() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_424_430);
        let mut first = sample();
        first["headers"]["authorization"] = json!(
            "AWS4-HMAC-SHA256 Credential=AKIA/20261123/us-east-1/lambda/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc123"
        );
        let mut replay = first.clone();
        replay["requestContext"]["requestId"] = json!("another");
        replay["requestContext"]["http"]["sourceIp"] = json!("3.91.200.1");
        replay["requestContext"]["timeEpoch"] = json!(1_795_424_499_000_i64);
        assert_eq!(signed(&first, now), signed(&replay, now));
        let mut resigned = first.clone();
        resigned["headers"]["authorization"] = json!("AWS4-HMAC-SHA256 Signature=abc124");
        assert_ne!(
            signed(&first, now).material,
            signed(&resigned, now).material
        );
        let mut other_body = first.clone();
        other_body["body"] = json!("{\"owner\":\"andrew\"}");
        assert_ne!(
            signed(&first, now).material,
            signed(&other_body, now).material
        );

        // Without a signature in the headers: the signing time, key and body name it.
        let bare = sample();
        let mut bare_replay = bare.clone();
        bare_replay["requestContext"]["requestId"] = json!("another");
        assert_eq!(signed(&bare, now), signed(&bare_replay, now));
        let mut later = bare.clone();
        later["headers"]["x-amz-date"] = json!("20261123T090001Z");
        assert_ne!(signed(&bare, now).material, signed(&later, now).material);
    }

    #[test]
    fn a_request_is_remembered_while_aws_could_accept_its_signature() {
        let signed_at = UNIX_EPOCH + Duration::from_secs(1_795_424_400);
        let now = signed_at + Duration::from_secs(30);
        assert_eq!(
            signed(&sample(), now).keep_until,
            signed_at + KEPT_PAST_SIGNING + Duration::from_secs(30)
        );
        let mut presigned = sample();
        presigned["queryStringParameters"] = json!({"X-Amz-Expires": "3600"});
        assert_eq!(
            signed(&presigned, now).keep_until,
            signed_at + Duration::from_secs(3600) + KEPT_PAST_SIGNING
        );
        let mut far = sample();
        far["headers"]["x-amz-date"] = json!("99991231T000000Z");
        assert_eq!(
            signed(&far, now).keep_until,
            now + MAX_PRESIGNED + KEPT_PAST_SIGNING
        );
        let mut undated = sample();
        undated["headers"]["x-amz-date"] = json!("yesterday");
        assert_eq!(signed(&undated, now).keep_until, now + KEPT_PAST_SIGNING);
    }
}
