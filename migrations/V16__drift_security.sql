-- drift-check, third security pass (issue 37, items 5 and 8).
--
-- A group the share limit held back is released on purpose, once, by an operator's row here
-- (written with the owner's login: no job role may insert one). The next remediating run that
-- checks the group spends it, needed or not: it makes the held-back changes, and stamps the row
-- with its run, the time, and how many changes the release let through (0 when the group was
-- within its share). A spent row stays spent: the trigger refuses any other change to it, so
-- the table is the audit of every release.
CREATE TABLE public.drift_releases (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    security_group_id text        NOT NULL CHECK (security_group_id ~ '^sg-[0-9a-f]{8,17}$'),
    reason            text        NOT NULL CHECK (btrim(reason) <> ''),
    added_by          text        NOT NULL CHECK (btrim(added_by) <> ''),
    added_at          timestamptz NOT NULL DEFAULT now(),
    used_by_run       uuid        REFERENCES public.drift_runs (id),
    used_at           timestamptz,
    changes           integer     CHECK (changes >= 0),
    CONSTRAINT drift_releases_spent_together
        CHECK ((used_by_run IS NULL) = (used_at IS NULL) AND (used_by_run IS NULL) = (changes IS NULL))
);
CREATE INDEX drift_releases_unspent ON public.drift_releases (security_group_id) WHERE used_by_run IS NULL;

CREATE FUNCTION public.drift_releases_spent_once() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF OLD.used_by_run IS NOT NULL
        OR NEW.id IS DISTINCT FROM OLD.id
        OR NEW.security_group_id IS DISTINCT FROM OLD.security_group_id
        OR NEW.reason IS DISTINCT FROM OLD.reason
        OR NEW.added_by IS DISTINCT FROM OLD.added_by
        OR NEW.added_at IS DISTINCT FROM OLD.added_at THEN
        RAISE EXCEPTION 'drift_releases: release % is spent or was changed; write a new one', OLD.id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER drift_releases_spent_once
    BEFORE UPDATE ON public.drift_releases
    FOR EACH ROW EXECUTE FUNCTION public.drift_releases_spent_once();

-- drift-check reads the releases and spends them; it writes none.
GRANT SELECT ON public.drift_releases TO db_sync_drift_check;
GRANT UPDATE (used_by_run, used_at, changes) ON public.drift_releases TO db_sync_drift_check;

-- An allowlist entry may name a rule whose source is not a CIDR: a managed prefix list (pl-…) or
-- another security group (sg-…), in source_ref. It pins protocol and ports like any entry, and
-- names one source only: a CIDR or a source_ref, never both.
ALTER TABLE public.drift_allowed_rules
    ADD COLUMN source_ref text CHECK (source_ref ~ '^(pl|sg)-[0-9a-f]{8,17}$'),
    ADD CONSTRAINT drift_allowed_rules_one_source CHECK (cidr IS NULL OR source_ref IS NULL);
ALTER TABLE public.drift_allowed_rules DROP CONSTRAINT drift_allowed_rules_names_a_rule;
ALTER TABLE public.drift_allowed_rules ADD CONSTRAINT drift_allowed_rules_names_a_rule
    CHECK (cidr IS NOT NULL OR source_ref IS NOT NULL OR aws_rule_id IS NOT NULL);
ALTER TABLE public.drift_allowed_rules DROP CONSTRAINT drift_allowed_rules_pins_a_rule;
ALTER TABLE public.drift_allowed_rules ADD CONSTRAINT drift_allowed_rules_pins_a_rule
    CHECK ((cidr IS NOT NULL OR source_ref IS NOT NULL)
        AND ip_protocol IS NOT NULL AND from_port IS NOT NULL AND to_port IS NOT NULL)
    NOT VALID;
