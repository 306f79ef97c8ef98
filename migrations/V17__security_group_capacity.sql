-- A thousand developers fit (issue 38). A security group holds 60 inbound rules per address
-- family by default, so developers' rules are spread over several managed groups: the row's
-- security_group_id stays the group it is managed under (DatabaseSecurityGroupId: its key,
-- its lock, its audit), and placed_group_id records which managed group holds its rule in
-- AWS. A rule stays in its group while it lives; one that lapsed, or was never applied, is
-- placed again where there is room. NULL: the rule is in security_group_id (every row from
-- before this migration), or it was never placed.
ALTER TABLE public.managed_ingress_rules
    ADD COLUMN placed_group_id text CHECK (placed_group_id ~ '^sg-[0-9a-f]{8,17}$');

-- Each job records where it placed a rule: sg-ip-update with the new address (mark_pending),
-- drift-check when it creates a missing rule (mark_placed). Neither may change the row's key.
GRANT UPDATE (placed_group_id) ON public.managed_ingress_rules
    TO db_sync_sg_ip_update, db_sync_drift_check;

-- Every managed group full: sg-ip-update refuses the request with its own outcome, and
-- changes nothing (the row is not marked failed: no retry or drift-check run can place it
-- until a slot frees or a group is added).
ALTER TABLE public.ip_update_audit DROP CONSTRAINT ip_update_audit_outcome_check;
ALTER TABLE public.ip_update_audit ADD CONSTRAINT ip_update_audit_outcome_check CHECK (outcome IN (
    'applied', 'unchanged', 'stale', 'failed',
    'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request',
    'refused_unauthorized', 'busy', 'expired', 'refused_replay', 'refused_no_room'));

-- drift-check reports a managed group whose rules reach 80 % of the quota.
ALTER TABLE public.drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE public.drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user',
    'unwritable_user', 'expired', 'profile_changed', 'group_capacity'));
