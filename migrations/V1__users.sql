-- Confirmed Cognito users. The Cognito `sub` is the identity; one row per sub.
CREATE TABLE users (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    cognito_user_id text        NOT NULL,
    display_name    text        NOT NULL,
    handle          text        NOT NULL,
    email           text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_cognito_user_id_key UNIQUE (cognito_user_id)
);

-- Handles are unique without regard to case, so "Andrew" cannot impersonate "andrew";
-- the handle is stored as the user typed it.
CREATE UNIQUE INDEX users_handle_lower_key ON users (lower(handle));
