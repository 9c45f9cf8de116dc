-- 03_idempotency.sql: the one reading of Idempotency-Key records.
--
-- The stored answer for (user, scope, key): one row with code 'REPLAY' and
-- the first answer when request_hash is the request's, code
-- 'IDEMPOTENCY_MISMATCH' (and no body) when the key was used for another
-- request; no row when the key is new. boxoffice_charge and boxoffice_pay
-- call it after locking the user row, which every other request with that
-- key needs before it can record the key, so it sees every committed use;
-- the worker calls it for the retry of a payment whose turn has ended.
-- Recording a key is an INSERT in the same statement that moves the money,
-- so a key and its money commit together or not at all.
--
-- A set-returning SQL function that is one SELECT: PostgreSQL inlines it
-- into the statement that calls it in FROM, so using it costs no more than
-- the join it stands for.
CREATE OR REPLACE FUNCTION boxoffice_idem_lookup(p_user uuid, p_scope text, p_key text,
                                                 p_hash text,
                                                 OUT code text, OUT body text)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN k.request_hash = p_hash THEN 'REPLAY' ELSE 'IDEMPOTENCY_MISMATCH' END,
           CASE WHEN k.request_hash = p_hash THEN k.response END
    FROM idempotency_keys k
    WHERE k.user_id = p_user AND k.scope = p_scope AND k.key = p_key
$$;
