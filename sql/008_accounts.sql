-- 008_accounts.sql: sign-in accounts (an e-mail address and a password) and
-- the identities of people who sign in with an OpenID Connect provider,
-- each belonging to one user.
--
-- An account is looked up by its e-mail address in canonical form (what
-- src/password.c's password_email_normalize() makes: trimmed, lower case);
-- the CHECK keeps other spellings out, and the unique index on lower(email)
-- makes a second account for one address fail even if one slipped past.
CREATE TABLE accounts (
    user_id              uuid NOT NULL,
    email                text NOT NULL,
    -- An Argon2id string from crypto_pwhash_str(); NULL for a user who
    -- signs in only through a provider (identities).
    password_hash        text,
    disabled_at          timestamptz,
    -- Sessions issued at or before this time are refused (sign out
    -- everywhere, disabling); Redis holds a copy the workers check.
    sessions_valid_after timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (user_id),
    CONSTRAINT accounts_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT accounts_email_canonical CHECK (email = lower(btrim(email))
                                              AND length(email) BETWEEN 3 AND 254
                                              AND strpos(email, '@') > 1),
    CONSTRAINT accounts_password_hash_form CHECK (password_hash IS NULL
                                                  OR (password_hash LIKE '$argon2%'
                                                      AND length(password_hash) < 128))
);
CREATE UNIQUE INDEX accounts_email_unique ON accounts (lower(email));

-- (issuer, subject) of a verified provider token -> the user it signs in.
CREATE TABLE identities (
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identities_pkey PRIMARY KEY (issuer, subject),
    CONSTRAINT identities_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT identities_valid CHECK (length(issuer) BETWEEN 1 AND 512
                                       AND length(subject) BETWEEN 1 AND 255)
);
CREATE INDEX identities_user ON identities (user_id);
