-- 07_demo_data.sql: the deterministic demo data generator.
--
-- boxoffice_seed(concerts, schedules per concert, seats per schedule, users,
-- opening balance) creates data that load tests can address without looking
-- anything up: user i has UUID 00000000-0000-4000-8000-<i, 12 digits>,
-- concert ids are 1..concerts, schedule ids are 1..concerts*schedules with
-- schedule (c-1)*schedules + s belonging to concert c, seats are numbered
-- from 1. Running it again adds what is missing and changes nothing else.

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

    INSERT INTO concerts (id, title, venue, on_sale)
    SELECT c, 'Concert ' || c, 'Hall ' || (1 + (c - 1) % 3), true
    FROM generate_series(1, p_concerts) AS c
    ON CONFLICT (id) DO NOTHING;

    INSERT INTO schedules (id, concert_id, starts_at, total_seats)
    SELECT (c - 1) * p_schedules + s, c,
           timestamptz '2027-06-01 19:30:00+00' + (c - 1) * interval '7 days'
               + (s - 1) * interval '1 day',
           p_seats
    FROM generate_series(1, p_concerts) AS c,
         generate_series(1, p_schedules) AS s
    ON CONFLICT (id) DO NOTHING;

    -- The first fifth of every hall is the expensive block.
    INSERT INTO seats (schedule_id, number, price)
    SELECT sc.id, n, CASE WHEN n <= greatest(p_seats / 5, 1) THEN 150000 ELSE 90000 END
    FROM schedules sc, generate_series(1, p_seats) AS n
    WHERE sc.id <= p_concerts * p_schedules
    ON CONFLICT (schedule_id, number) DO NOTHING;

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
