-- A signed request is taken once (issue 37, item 9). A Function URL request without `ip`
-- names no address: captured and sent again from another host while AWS still accepts its
-- signature, it would move the rule there. sg-ip-update records the SHA-256 of what names each
-- signed request (its SigV4 signature and body; see functions/sg-ip-update/src/replay.rs) per
-- owner, until the signature could no longer be accepted, and refuses the same request again
-- with its own audit outcome. Each request deletes the records past their time.
CREATE TABLE public.signed_requests (
    security_group_id text        NOT NULL,
    owner             text        NOT NULL,
    digest            bytea       NOT NULL CHECK (octet_length(digest) = 32),
    keep_until        timestamptz NOT NULL,
    PRIMARY KEY (security_group_id, owner, digest)
);
CREATE INDEX signed_requests_keep_until ON public.signed_requests (keep_until);

ALTER TABLE public.ip_update_audit DROP CONSTRAINT ip_update_audit_outcome_check;
ALTER TABLE public.ip_update_audit ADD CONSTRAINT ip_update_audit_outcome_check CHECK (outcome IN (
    'applied', 'unchanged', 'stale', 'failed',
    'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request',
    'refused_unauthorized', 'busy', 'expired', 'refused_replay'));

-- sg-ip-update: take a request (insert, or renew a record of its own that lapsed) and delete
-- the records past their time; nothing else may read or write them.
GRANT SELECT, INSERT, DELETE ON public.signed_requests TO db_sync_sg_ip_update;
GRANT UPDATE (keep_until) ON public.signed_requests TO db_sync_sg_ip_update;
