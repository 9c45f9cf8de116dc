-- 04_holds.sql: holding a seat, reading and releasing one's hold.
--
-- Every booking function (here and in 05_money.sql) is one atomic
-- server-side call returning (code, body): code 'OK' and the JSON answer,
-- or an error code that the worker maps to a status. Locks are always
-- taken in the order user row, then seat row, so concurrent calls cannot
-- deadlock. A HELD seat whose hold_expires_at has passed is treated as
-- AVAILABLE by every reader and writer: correctness never waits for the
-- sweeper.
--
-- PostgreSQL's CPU is what limits the write path, and most of it goes to
-- per-statement costs: executor start-up, evaluating the CHECK constraints
-- of every table written, firing the foreign-key triggers. So reads that
-- serve one decision are joined, and the writes of one outcome go in a
-- single statement with data-modifying CTEs. Every read that must see what
-- others committed runs in a statement that starts after the lock that
-- orders it against them.

-- Hold a seat for p_user for p_ttl seconds: at most p_max_holds live holds
-- per schedule, and at most p_max_tickets seats per concert held or paid
-- (across every schedule and turn of the concert).
DROP FUNCTION IF EXISTS boxoffice_hold(bigint, bigint, integer, uuid, integer, integer);
CREATE OR REPLACE FUNCTION boxoffice_hold(p_concert bigint, p_schedule bigint, p_seat integer,
                                          p_user uuid, p_ttl integer, p_max_holds integer,
                                          p_max_tickets integer,
                                          OUT code text, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r reservations;
    sched_ok boolean;
    held bigint;
    tickets bigint;
    s_status text;
    s_now text;
    s_holder uuid;
    s_expires timestamptz;
    s_reservation uuid;
    s_price bigint;
BEGIN
    -- The user's row serialises that user's holds, so the limit holds.
    -- Schedules do not change during a sale, so checking one in the same
    -- statement reads nothing stale. sched_ok: NULL if the schedule is not
    -- the concert's, false outside the concert's sale window (before
    -- sale_opens_at, from sale_closes_at on), true inside it.
    SELECT (SELECT (c.sale_opens_at IS NULL OR c.sale_opens_at <= now())
                   AND (c.sale_closes_at IS NULL OR c.sale_closes_at > now())
            FROM schedules sc JOIN concerts c ON c.id = sc.concert_id
            WHERE sc.id = p_schedule AND sc.concert_id = p_concert)
    INTO sched_ok
    FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        -- A missing schedule is reported first, as it always was.
        PERFORM 1 FROM schedules WHERE id = p_schedule AND concert_id = p_concert;
        code := CASE WHEN FOUND THEN 'USER_NOT_FOUND' ELSE 'SCHEDULE_NOT_FOUND' END;
        RETURN;
    END IF;
    IF sched_ok IS NULL THEN
        code := 'SCHEDULE_NOT_FOUND'; RETURN;
    END IF;
    IF NOT sched_ok THEN
        code := 'NOT_ON_SALE'; RETURN;
    END IF;

    -- This statement starts after the user lock is granted, so the counts
    -- see every hold and payment of this user: another hold or payment
    -- needs that lock to commit. The seat asked for is not counted, so
    -- that holding it again (a retry) is not refused.
    SELECT st.status, boxoffice_seat_status(st), st.holder, st.hold_expires_at,
           st.reservation_id, st.price,
           (SELECT count(*) FROM seats h
            WHERE h.holder = p_user AND h.schedule_id = p_schedule AND h.number <> p_seat
              AND h.status = 'HELD' AND h.hold_expires_at > now()),
           (SELECT count(*) FROM reservations t
            JOIN schedules ts ON ts.id = t.schedule_id AND ts.concert_id = p_concert
            WHERE t.user_id = p_user
              AND (t.status = 'PAID' OR (t.status = 'HELD' AND t.expires_at > now()))
              AND NOT (t.schedule_id = p_schedule AND t.seat_number = p_seat))
    INTO s_status, s_now, s_holder, s_expires, s_reservation, s_price, held, tickets
    FROM seats st
    WHERE st.schedule_id = p_schedule AND st.number = p_seat FOR UPDATE;
    IF NOT FOUND THEN
        SELECT count(*) INTO held FROM seats
        WHERE holder = p_user AND schedule_id = p_schedule AND number <> p_seat
          AND status = 'HELD' AND hold_expires_at > now();
        code := CASE WHEN held >= p_max_holds THEN 'HOLD_LIMIT' ELSE 'SEAT_NOT_FOUND' END;
        RETURN;
    END IF;
    IF held >= p_max_holds THEN
        code := 'HOLD_LIMIT'; RETURN;
    END IF;
    IF tickets >= p_max_tickets THEN
        code := 'TICKET_LIMIT'; RETURN;
    END IF;
    -- Holding what one already holds (a retry after a lost answer) returns
    -- that hold instead of a conflict with oneself.
    IF s_status = 'HELD' AND s_holder = p_user AND s_expires > now() THEN
        SELECT * INTO r FROM reservations WHERE id = s_reservation;
        code := 'OK';
        body := boxoffice_reservation_body(r);
        RETURN;
    END IF;
    IF s_now <> 'AVAILABLE' THEN
        code := 'SEAT_TAKEN'; RETURN;
    END IF;

    -- Whatever hold this seat had has ended: close every reservation still
    -- marked HELD for it, not only the one the seat points to. The insert
    -- reads from the close, so the close has run when the unique index on
    -- live holds is checked; the seat's reference to the new reservation
    -- is checked at the end of the statement, when that row exists.
    WITH closed AS (
        UPDATE reservations SET status = 'EXPIRED', ended_at = now()
        WHERE schedule_id = p_schedule AND seat_number = p_seat AND status = 'HELD'
        RETURNING 1
    ), ins AS (
        INSERT INTO reservations (schedule_id, seat_number, user_id, price, expires_at)
        SELECT p_schedule, p_seat, p_user, s_price, now() + make_interval(secs => p_ttl)
        FROM (SELECT count(*) FROM closed) c
        RETURNING *
    ), seat AS (
        UPDATE seats SET status = 'HELD', holder = p_user,
                         hold_expires_at = ins.expires_at, reservation_id = ins.id
        FROM ins WHERE seats.schedule_id = p_schedule AND seats.number = p_seat
    )
    SELECT * INTO r FROM ins;
    code := 'OK';
    body := boxoffice_reservation_body(r);
END
$$;

-- One's own reservation; others' are reported as not found.
CREATE OR REPLACE FUNCTION boxoffice_reservation(p_id uuid, p_user uuid,
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
CREATE OR REPLACE FUNCTION boxoffice_release(p_id uuid, p_user uuid,
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
