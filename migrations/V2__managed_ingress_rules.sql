-- Desired state of the database security groups: one ingress rule per developer (owner) per
-- group, moved to the developer's current address by sg-ip-update. Adding a developer is an
-- INSERT here, reviewed like any change; drift-check pushes AWS towards these rows.
CREATE TABLE managed_ingress_rules (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    security_group_id text        NOT NULL CHECK (security_group_id ~ '^sg-[0-9a-f]{8,17}$'),
    owner             text        NOT NULL CHECK (owner ~ '^[A-Za-z0-9._@+-]{1,64}$'),
    description       text        NOT NULL DEFAULT '',
    ip_protocol       text        NOT NULL DEFAULT 'tcp' CHECK (ip_protocol IN ('tcp', 'udp')),
    from_port         integer     NOT NULL DEFAULT 5432 CHECK (from_port BETWEEN 0 AND 65535),
    to_port           integer     NOT NULL DEFAULT 5432 CHECK (to_port BETWEEN 0 AND 65535),
    -- One host only; NULL until the owner's first address arrives.
    cidr              cidr        CHECK (cidr IS NULL OR masklen(cidr) = CASE family(cidr) WHEN 4 THEN 32 ELSE 128 END),
    -- Private and carrier-grade NAT addresses are refused unless this is set (a VPN, say).
    allow_private     boolean     NOT NULL DEFAULT false,
    -- The AWS security group rule id; NULL until AWS has created the rule.
    aws_rule_id       text,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'failed')),
    last_error        text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT managed_ingress_rules_port_range CHECK (from_port <= to_port),
    CONSTRAINT managed_ingress_rules_owner_key UNIQUE (security_group_id, owner)
);

-- Every request sg-ip-update received, whatever came of it. Append-only.
CREATE TABLE ip_update_audit (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner             text        NOT NULL,
    security_group_id text        NOT NULL,
    old_cidr          text,
    new_cidr          text,
    outcome           text        NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'failed', 'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request')),
    detail            text,
    request_id        text,
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ip_update_audit_owner_at ON ip_update_audit (owner, at);

CREATE FUNCTION ip_update_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ip_update_audit is append-only';
END;
$$;
CREATE TRIGGER ip_update_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ip_update_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ip_update_audit_append_only();
