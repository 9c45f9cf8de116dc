-- 003_booking.sql: the booking operations, each one atomic server-side call.
--
-- Every function returns (code, body): code 'OK' and the JSON answer, or
-- an error code that the worker maps to a status. Locks are always taken
-- in the order user row, then seat row, so concurrent calls cannot
-- deadlock. A HELD seat whose hold_expires_at has passed is treated as
-- AVAILABLE by every reader and writer: correctness never waits for the
-- sweeper.

CREATE FUNCTION boxoffice_seat_status(s seats) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.status = 'HELD' AND s.hold_expires_at <= now()
                THEN 'AVAILABLE' ELSE s.status END
$$;

CREATE FUNCTION boxoffice_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The concert list, as the API's JSON answer.
CREATE FUNCTION boxoffice_concerts_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('concerts', COALESCE(json_agg(json_build_object(
               'id', c.id, 'title', c.title, 'venue', c.venue,
               'onSale', c.on_sale,
               'firstShow', boxoffice_ts((SELECT min(starts_at) FROM schedules
                                          WHERE concert_id = c.id)))
               ORDER BY c.id), '[]'::json))::text
    FROM concerts c WHERE c.on_sale
$$;

-- Schedules of a concert with their available seats; NULL if no such concert.
CREATE FUNCTION boxoffice_schedules_json(p_concert bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('concertId', c.id, 'schedules', COALESCE((
        SELECT json_agg(json_build_object(
                   'id', sc.id, 'startsAt', boxoffice_ts(sc.starts_at),
                   'availableSeats', (SELECT count(*) FROM seats s
                                      WHERE s.schedule_id = sc.id
                                        AND (s.status = 'AVAILABLE'
                                             OR (s.status = 'HELD'
                                                 AND s.hold_expires_at <= now()))),
                   'totalSeats', sc.total_seats) ORDER BY sc.starts_at, sc.id)
        FROM schedules sc WHERE sc.concert_id = c.id), '[]'::json))::text
    FROM concerts c WHERE c.id = p_concert
$$;

-- Every seat of a schedule; no row if the schedule is not the concert's.
-- fresh_ms says how long the answer stays true at most (up to a second):
-- until the next hold in it expires, so a cache of it never shows an
-- expired hold as HELD.
CREATE FUNCTION boxoffice_seats_json(p_concert bigint, p_schedule bigint,
                                     OUT body text, OUT fresh_ms integer)
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('scheduleId', sc.id, 'seats', COALESCE((
               SELECT json_agg(json_build_object('number', s.number, 'price', s.price,
                                                 'status', boxoffice_seat_status(s))
                               ORDER BY s.number)
               FROM seats s WHERE s.schedule_id = sc.id), '[]'::json))::text,
           COALESCE((SELECT floor(extract(epoch FROM min(s.hold_expires_at) - now()) * 1000)
                     FROM seats s WHERE s.schedule_id = sc.id AND s.status = 'HELD'
                       AND s.hold_expires_at > now()), 1000)::integer
    FROM schedules sc WHERE sc.id = p_schedule AND sc.concert_id = p_concert
$$;

CREATE FUNCTION boxoffice_reservation_body(r reservations) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', r.id, 'scheduleId', r.schedule_id,
        'seatNumber', r.seat_number,
        'status', CASE WHEN r.status = 'HELD' AND r.expires_at <= now()
                       THEN 'EXPIRED' ELSE r.status END,
        'expiresAt', boxoffice_ts(r.expires_at), 'price', r.price)::text
$$;

-- Hold a seat for p_user for p_ttl seconds.
CREATE FUNCTION boxoffice_hold(p_concert bigint, p_schedule bigint, p_seat integer,
                               p_user uuid, p_ttl integer, p_max_holds integer,
                               OUT code text, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s seats;
    r reservations;
    held integer;
BEGIN
    PERFORM 1 FROM schedules WHERE id = p_schedule AND concert_id = p_concert;
    IF NOT FOUND THEN
        code := 'SCHEDULE_NOT_FOUND'; RETURN;
    END IF;
    -- The user's row serialises that user's holds, so the limit holds.
    PERFORM 1 FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'USER_NOT_FOUND'; RETURN;
    END IF;
    SELECT count(*) INTO held FROM seats
    WHERE holder = p_user AND schedule_id = p_schedule AND number <> p_seat
      AND status = 'HELD' AND hold_expires_at > now();
    IF held >= p_max_holds THEN
        code := 'HOLD_LIMIT'; RETURN;
    END IF;

    SELECT * INTO s FROM seats
    WHERE schedule_id = p_schedule AND number = p_seat FOR UPDATE;
    IF NOT FOUND THEN
        code := 'SEAT_NOT_FOUND'; RETURN;
    END IF;
    -- Holding what one already holds (a retry after a lost answer) returns
    -- that hold instead of a conflict with oneself.
    IF s.status = 'HELD' AND s.holder = p_user AND s.hold_expires_at > now() THEN
        SELECT * INTO r FROM reservations WHERE id = s.reservation_id;
        code := 'OK';
        body := boxoffice_reservation_body(r);
        RETURN;
    END IF;
    IF boxoffice_seat_status(s) <> 'AVAILABLE' THEN
        code := 'SEAT_TAKEN'; RETURN;
    END IF;
    -- Whatever hold this seat had has ended: close every reservation still
    -- marked HELD for it, not only the one the seat points to.
    UPDATE reservations SET status = 'EXPIRED', ended_at = now()
    WHERE schedule_id = p_schedule AND seat_number = p_seat AND status = 'HELD';

    INSERT INTO reservations (schedule_id, seat_number, user_id, price, expires_at)
    VALUES (p_schedule, p_seat, p_user, s.price, now() + make_interval(secs => p_ttl))
    RETURNING * INTO r;
    UPDATE seats SET status = 'HELD', holder = p_user,
                     hold_expires_at = r.expires_at, reservation_id = r.id
    WHERE schedule_id = p_schedule AND number = p_seat;
    code := 'OK';
    body := boxoffice_reservation_body(r);
END
$$;

-- One's own reservation; others' are reported as not found.
CREATE FUNCTION boxoffice_reservation(p_id uuid, p_user uuid,
                                      OUT code text, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r reservations;
BEGIN
    SELECT * INTO r FROM reservations WHERE id = p_id AND user_id = p_user;
    IF NOT FOUND THEN
        code := 'RESERVATION_NOT_FOUND'; RETURN;
    END IF;
    code := 'OK';
    body := boxoffice_reservation_body(r);
END
$$;

-- Release one's own live hold: the seat is available again at once.
CREATE FUNCTION boxoffice_release(p_id uuid, p_user uuid,
                                  OUT code text, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r reservations;
BEGIN
    SELECT * INTO r FROM reservations WHERE id = p_id AND user_id = p_user;
    IF NOT FOUND THEN
        code := 'RESERVATION_NOT_FOUND'; RETURN;
    END IF;
    PERFORM 1 FROM seats WHERE schedule_id = r.schedule_id
                           AND number = r.seat_number FOR UPDATE;
    SELECT * INTO r FROM reservations WHERE id = p_id;
    IF r.status = 'PAID' THEN
        code := 'ALREADY_PAID'; RETURN;
    END IF;
    IF r.status <> 'HELD' OR r.expires_at <= now() THEN
        code := 'HOLD_EXPIRED'; RETURN;
    END IF;
    UPDATE reservations SET status = 'RELEASED', ended_at = now()
    WHERE id = p_id RETURNING * INTO r;
    UPDATE seats SET status = 'AVAILABLE', holder = NULL,
                     hold_expires_at = NULL, reservation_id = NULL
    WHERE schedule_id = r.schedule_id AND number = r.seat_number
      AND reservation_id = p_id;
    code := 'OK';
    body := boxoffice_reservation_body(r);
END
$$;

-- Idempotency: the stored answer for (user, scope, key), if any.
-- Returns code 'REPLAY' with the body, 'IDEMPOTENCY_MISMATCH', or NULL.
CREATE FUNCTION boxoffice_idem_lookup(p_user uuid, p_scope text, p_key text,
                                      p_hash text, OUT code text, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k idempotency_keys;
BEGIN
    IF p_key IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO k FROM idempotency_keys
    WHERE user_id = p_user AND scope = p_scope AND key = p_key;
    IF FOUND THEN
        IF k.request_hash = p_hash THEN
            code := 'REPLAY'; body := k.response;
        ELSE
            code := 'IDEMPOTENCY_MISMATCH';
        END IF;
    END IF;
END
$$;

-- Add p_amount to p_user's balance, with a ledger entry.
CREATE FUNCTION boxoffice_charge(p_user uuid, p_amount bigint, p_key text,
                                 OUT code text, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    bal bigint;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        code := 'INVALID_AMOUNT'; RETURN;
    END IF;
    -- The row lock also serialises retries carrying the same key.
    SELECT balance INTO bal FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'USER_NOT_FOUND'; RETURN;
    END IF;
    SELECT l.code, l.body INTO code, body
    FROM boxoffice_idem_lookup(p_user, 'charge', p_key, p_amount::text) l;
    IF code IS NOT NULL THEN
        RETURN;
    END IF;
    IF bal > 9000000000000000000 - p_amount THEN
        code := 'BALANCE_LIMIT'; RETURN;
    END IF;
    UPDATE users SET balance = balance + p_amount WHERE id = p_user
    RETURNING balance INTO bal;
    INSERT INTO ledger (user_id, amount, kind, balance_after)
    VALUES (p_user, p_amount, 'CHARGE', bal);
    code := 'OK';
    body := json_build_object('userId', p_user, 'balance', bal, 'charged', p_amount)::text;
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status, response)
        VALUES (p_user, 'charge', p_key, p_amount::text, 200, body);
    END IF;
END
$$;

-- Pay p_user's live hold p_reservation (of concert p_concert) from the balance.
CREATE FUNCTION boxoffice_pay(p_user uuid, p_reservation uuid, p_concert bigint,
                              p_key text, OUT code text, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r reservations;
    s seats;
    bal bigint;
    pay payments;
BEGIN
    SELECT balance INTO bal FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'USER_NOT_FOUND'; RETURN;
    END IF;
    SELECT l.code, l.body INTO code, body
    FROM boxoffice_idem_lookup(p_user, 'payment', p_key, p_reservation::text) l;
    IF code IS NOT NULL THEN
        RETURN;
    END IF;

    SELECT * INTO r FROM reservations WHERE id = p_reservation AND user_id = p_user;
    IF NOT FOUND THEN
        code := 'RESERVATION_NOT_FOUND'; RETURN;
    END IF;
    PERFORM 1 FROM schedules WHERE id = r.schedule_id AND concert_id = p_concert;
    IF NOT FOUND THEN
        code := 'WRONG_CONCERT'; RETURN;
    END IF;
    SELECT * INTO s FROM seats
    WHERE schedule_id = r.schedule_id AND number = r.seat_number FOR UPDATE;
    SELECT * INTO r FROM reservations WHERE id = p_reservation;
    IF r.status = 'PAID' THEN
        code := 'ALREADY_PAID'; RETURN;
    END IF;
    IF r.status <> 'HELD' OR r.expires_at <= now() OR s.reservation_id IS DISTINCT FROM r.id
       OR s.status <> 'HELD' THEN
        code := 'HOLD_EXPIRED'; RETURN;
    END IF;
    IF bal < r.price THEN
        code := 'INSUFFICIENT_BALANCE'; RETURN;
    END IF;

    UPDATE users SET balance = balance - r.price WHERE id = p_user
    RETURNING balance INTO bal;
    INSERT INTO payments (reservation_id, user_id, schedule_id, seat_number, amount)
    VALUES (r.id, p_user, r.schedule_id, r.seat_number, r.price)
    RETURNING * INTO pay;
    IF r.price > 0 THEN
        INSERT INTO ledger (user_id, amount, kind, payment_id, balance_after)
        VALUES (p_user, -r.price, 'PAYMENT', pay.id, bal);
    END IF;
    UPDATE reservations SET status = 'PAID', ended_at = now() WHERE id = r.id;
    UPDATE seats SET status = 'SOLD', hold_expires_at = NULL
    WHERE schedule_id = r.schedule_id AND number = r.seat_number;
    code := 'OK';
    body := json_build_object('id', pay.id, 'reservationId', r.id, 'amount', pay.amount,
                              'balance', bal, 'scheduleId', r.schedule_id,
                              'seatNumber', r.seat_number)::text;
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status, response)
        VALUES (p_user, 'payment', p_key, p_reservation::text, 201, body);
    END IF;
END
$$;

-- Tidy holds that have expired: bookkeeping only, readers already treat
-- them as available. Also forgets Idempotency-Key records after a day.
-- Returns how many holds were tidied.
CREATE FUNCTION boxoffice_sweep() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    -- RETURNING gives new values, so the old reservation ids are read
    -- first; seats being held or paid right now are skipped, not waited on.
    WITH stale AS (
        SELECT schedule_id, number, reservation_id FROM seats
        WHERE status = 'HELD' AND hold_expires_at <= now()
        ORDER BY schedule_id, number
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        UPDATE seats s SET status = 'AVAILABLE', holder = NULL,
                           hold_expires_at = NULL, reservation_id = NULL
        FROM stale WHERE s.schedule_id = stale.schedule_id AND s.number = stale.number
        RETURNING stale.reservation_id
    )
    UPDATE reservations SET status = 'EXPIRED', ended_at = now()
    WHERE id IN (SELECT reservation_id FROM gone) AND status = 'HELD';
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
    RETURN n;
END
$$;
