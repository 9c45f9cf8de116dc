-- 08_accounts.sql: accounts: sign-up, the look-up at sign-in, a stronger
-- hash after a cost change, disabling, and the demo accounts. E-mail
-- addresses arrive in canonical form (the worker and boxofficectl
-- normalise them); passwords never reach the database, only their hashes.

-- A new user with an account for p_email. code: 'OK' (user_id set) or
-- 'EMAIL_TAKEN'. The user opens with a balance of 0 and so no ledger
-- entry: the balance is the (empty) ledger's sum.
CREATE OR REPLACE FUNCTION boxoffice_account_create(p_email text, p_hash text,
                                                    OUT code text, OUT user_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    uid uuid := gen_random_uuid();
BEGIN
    IF EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(p_email)) THEN
        code := 'EMAIL_TAKEN'; RETURN;
    END IF;
    BEGIN
        INSERT INTO users (id, name, balance) VALUES (uid, '', 0);
        INSERT INTO accounts (user_id, email, password_hash) VALUES (uid, p_email, p_hash);
    EXCEPTION WHEN unique_violation THEN
        -- A concurrent sign-up of the same address won; its user stays,
        -- this one's is rolled back with the block.
        code := 'EMAIL_TAKEN'; RETURN;
    END;
    code := 'OK';
    user_id := uid;
END
$$;

-- The account of p_email, for sign-in: no row if there is none.
CREATE OR REPLACE FUNCTION boxoffice_account_by_email(p_email text)
RETURNS TABLE (user_id uuid, password_hash text, disabled boolean)
LANGUAGE sql STABLE AS $$
    SELECT a.user_id, a.password_hash, a.disabled_at IS NOT NULL
    FROM accounts a WHERE lower(a.email) = lower(p_email)
$$;

-- Replace p_user's hash p_old by p_new (the same password at the cost now
-- in force), only if p_old is still in place: a password changed meanwhile
-- is not overwritten. Returns whether it was replaced.
CREATE OR REPLACE FUNCTION boxoffice_account_rehash(p_user uuid, p_old text, p_new text)
RETURNS boolean LANGUAGE sql AS $$
    WITH u AS (
        UPDATE accounts SET password_hash = p_new
        WHERE user_id = p_user AND password_hash = p_old
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM u)
$$;

-- Disable the account of p_email and end its sessions: no row if there is
-- none. sessions_valid_after is returned in Unix seconds, for the copy
-- in Redis that the workers check.
CREATE OR REPLACE FUNCTION boxoffice_account_disable(p_email text)
RETURNS TABLE (user_id uuid, sessions_valid_after bigint)
LANGUAGE sql AS $$
    UPDATE accounts a
    SET disabled_at = coalesce(a.disabled_at, now()), sessions_valid_after = now()
    WHERE lower(a.email) = lower(p_email)
    RETURNING a.user_id, floor(extract(epoch FROM a.sessions_valid_after))::bigint
$$;

-- The demo accounts: user i (boxoffice_user_uuid(i)) signs in as
-- user<i>@demo.boxoffice.test with the one demo password whose hash is
-- p_hash (boxofficectl seed hashes it once). Existing accounts stay.
CREATE OR REPLACE FUNCTION boxoffice_seed_accounts(p_users integer, p_hash text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO accounts (user_id, email, password_hash)
    SELECT boxoffice_user_uuid(i), 'user' || i || '@demo.boxoffice.test', p_hash
    FROM generate_series(1, p_users) AS i
    JOIN users u ON u.id = boxoffice_user_uuid(i)
    ON CONFLICT DO NOTHING
$$;

-- The user that a provider's subject (p_issuer, p_subject) signs in, made
-- on its first sign-in with a balance of 0 and no account (no password).
-- Two first sign-ins at once: the second's insert waits for the first's
-- commit, fails on identities_pkey, and reads the first's user.
CREATE OR REPLACE FUNCTION boxoffice_identity_user(p_issuer text, p_subject text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    uid uuid;
BEGIN
    SELECT i.user_id INTO uid FROM identities i
    WHERE i.issuer = p_issuer AND i.subject = p_subject;
    IF FOUND THEN
        RETURN uid;
    END IF;
    uid := gen_random_uuid();
    BEGIN
        INSERT INTO users (id, name, balance) VALUES (uid, '', 0);
        INSERT INTO identities (issuer, subject, user_id) VALUES (p_issuer, p_subject, uid);
    EXCEPTION WHEN unique_violation THEN
        SELECT i.user_id INTO uid FROM identities i
        WHERE i.issuer = p_issuer AND i.subject = p_subject;
    END;
    RETURN uid;
END
$$;
