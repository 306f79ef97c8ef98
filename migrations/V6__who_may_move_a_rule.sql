-- Who may move each rule (issue 19). A request that names an owner is applied only when AWS has
-- proven it comes from the row's `principal` (a Function URL with AuthType AWS_IAM hands the
-- signer's ARN to the function), or, for a row with `allow_unverified`, from a request that
-- carries no proven identity (an EventBridge event, a bare direct invocation).
--
-- `principal` is one of, and nothing wider (no general glob):
--   arn:aws:iam::123456789012:user/[path/]name                 that IAM user, exactly
--   arn:aws:sts::123456789012:assumed-role/role-name/session    that role session, exactly
--   arn:aws:sts::123456789012:assumed-role/role-name/*          any session of that role
-- NULL means no identity may move the row (only unverified requests, if it allows them).
ALTER TABLE managed_ingress_rules
    ADD COLUMN principal text CHECK (principal ~ '^arn:aws(-cn|-us-gov)?:(iam::[0-9]{12}:user/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}|sts::[0-9]{12}:assumed-role/[A-Za-z0-9+=,.@_-]{1,64}/([A-Za-z0-9+=,.@_-]{2,64}|\*))$'),
    ADD COLUMN allow_unverified boolean NOT NULL DEFAULT false;

-- How each request came, and who AWS says sent it (Function URL requests only).
ALTER TABLE ip_update_audit
    ADD COLUMN via text CHECK (via IN ('function_url', 'eventbridge', 'direct')),
    ADD COLUMN caller_arn text,
    ADD COLUMN caller_account_id text,
    ADD COLUMN caller_id text;

ALTER TABLE ip_update_audit DROP CONSTRAINT ip_update_audit_outcome_check;
ALTER TABLE ip_update_audit ADD CONSTRAINT ip_update_audit_outcome_check CHECK (outcome IN (
    'applied', 'unchanged', 'stale', 'failed',
    'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request',
    'refused_unauthorized'));
