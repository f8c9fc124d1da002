-- The control plane: people who sign in, their sessions, failed sign-ins (for throttling),
-- API tokens, the audit log, and secrets the appliance makes for itself.

CREATE TABLE users (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                 text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    role                  text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    password_hash         text NOT NULL,  -- argon2id, with its parameters
    -- A password someone else chose (the first admin's, one an admin set): changed at sign-in.
    must_change_password  boolean NOT NULL DEFAULT false,
    disabled              boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    last_login_at         timestamptz
);

-- The cookie holds a random token; only its SHA-256 is kept, so a copy of this table
-- signs nobody in.
CREATE TABLE web_sessions (
    token_hash    bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

CREATE TABLE login_failures (
    email   text NOT NULL,
    client  inet,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email ON login_failures (email, at);
CREATE INDEX login_failures_client ON login_failures (client, at);

-- Bearer tokens for the config API, made by admins; only a SHA-256 of each is kept.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    token_hash    bytea NOT NULL UNIQUE,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);

-- Who changed what: appended, never updated.
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,  -- a user's email, `cli`, or an API token's name
    action  text NOT NULL,  -- e.g. `destination.update`, `user.create`, `login.failed`
    target  text,           -- what it was done to, by name
    detail  jsonb NOT NULL DEFAULT '{}'  -- never secrets
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

CREATE TABLE keyring (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
