-- 01_format.sql: the small pieces every answer is made of: a seat's status
-- as readers see it, a time in the API's format, a reservation as JSON.

-- A HELD seat whose hold_expires_at has passed is AVAILABLE to every reader
-- and writer: correctness never waits for the sweeper.
CREATE OR REPLACE FUNCTION boxoffice_seat_status(s seats) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.status = 'HELD' AND s.hold_expires_at <= now()
                THEN 'AVAILABLE' ELSE s.status END
$$;

-- STABLE, as the to_char it wraps: declared IMMUTABLE it could not be
-- inlined into its callers, so every answer with a time in it parsed and
-- planned its SQL body again.
CREATE OR REPLACE FUNCTION boxoffice_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE OR REPLACE FUNCTION boxoffice_reservation_body(r reservations) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', r.id, 'scheduleId', r.schedule_id,
        'seatNumber', r.seat_number,
        'status', CASE WHEN r.status = 'HELD' AND r.expires_at <= now()
                       THEN 'EXPIRED' ELSE r.status END,
        'expiresAt', boxoffice_ts(r.expires_at), 'price', r.price)::text
$$;
