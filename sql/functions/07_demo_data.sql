-- 07_demo_data.sql: the deterministic demo data generator.
--
-- boxoffice_seed(concerts, schedules per concert, seats per schedule, users,
-- opening balance) creates data that load tests can address without looking
-- anything up: user i has UUID 00000000-0000-4000-8000-<i, 12 digits>,
-- concert ids are 1..concerts, schedule ids are 1..concerts*schedules with
-- schedule (c-1)*schedules + s belonging to concert c, seats are numbered
-- from 1, in three halls whose plans put the first fifth of the seats (at
-- least one) in tier premium at 150000 and the rest in tier standard at
-- 90000 (boxoffice_demo_catalog). Running it again adds what is missing;
-- it removes nothing, and changes only what differs from the demo
-- catalogue of these sizes where no seat held or sold stands in the way.

CREATE OR REPLACE FUNCTION boxoffice_user_uuid(i bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
$$;

CREATE OR REPLACE FUNCTION boxoffice_seed(p_concerts integer, p_schedules integer,
                                          p_seats integer, p_users integer,
                                          p_balance bigint DEFAULT 500000)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_concerts < 0 OR p_schedules < 0 OR p_seats < 0 OR p_users < 0
       OR p_balance < 0 OR p_users > 999999999999 THEN
        RAISE EXCEPTION 'boxoffice_seed: sizes must be non-negative';
    END IF;

    -- The concerts, schedules and seats are a catalogue like any other
    -- (sql/functions/10_venues.sql), imported without removing anything.
    PERFORM boxoffice_catalog_import(boxoffice_demo_catalog(p_concerts, p_schedules, p_seats),
                                     false);

    WITH fresh AS (
        INSERT INTO users (id, name, balance)
        SELECT boxoffice_user_uuid(i), 'User ' || i, p_balance
        FROM generate_series(1, p_users) AS i
        ON CONFLICT (id) DO NOTHING
        RETURNING id, balance
    )
    INSERT INTO ledger (user_id, amount, kind, balance_after)
    SELECT id, balance, 'OPENING', balance FROM fresh WHERE balance > 0;
END
$$;
