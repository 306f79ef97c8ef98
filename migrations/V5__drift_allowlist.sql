-- Foreign rules drift-check must leave alone: a team's VPN range, a bastion, the VPC's own CIDR
-- on the database port. A CIDR rule in a managed group that no managed row describes is
-- `unexpected` (revoked in remediate mode) unless an entry here names it; then it is reported
-- as `allowed` and kept. An entry names a rule by its exact CIDR, its AWS rule id, or both (then
-- both must match). Matching is exact, never by containment: an entry for 10.20.0.0/16 does not
-- cover 0.0.0.0/0 or 10.0.0.0/8, so a rule wider than one host stays only if an entry names it.
CREATE TABLE drift_allowed_rules (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    security_group_id text        NOT NULL CHECK (security_group_id ~ '^sg-[0-9a-f]{8,17}$'),
    cidr              cidr,
    aws_rule_id       text        CHECK (aws_rule_id ~ '^sgr-[0-9a-f]+$'),
    reason            text        NOT NULL CHECK (btrim(reason) <> ''),
    added_by          text        NOT NULL CHECK (btrim(added_by) <> ''),
    added_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT drift_allowed_rules_names_a_rule CHECK (cidr IS NOT NULL OR aws_rule_id IS NOT NULL)
);
CREATE INDEX drift_allowed_rules_group ON drift_allowed_rules (security_group_id);

ALTER TABLE drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user'));
