-- 09_tickets.sql: tickets as their owner and the door see them, and the
-- refund (sql/010_tickets.sql has the table). The refund keeps the lock
-- order of every booking function (04_holds.sql): user row, then seat row.

-- A ticket as the API shows it: where and when, what was paid, its state
-- and its door code.
CREATE OR REPLACE FUNCTION boxoffice_ticket_json(t tickets) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', t.id, 'code', t.code, 'state', t.status,
        'concertId', c.id, 'concertTitle', c.title, 'venue', c.venue,
        'scheduleId', t.schedule_id, 'startsAt', boxoffice_ts(sc.starts_at),
        'section', s.section, 'row', s.seat_row, 'label', s.label,
        'seatNumber', t.seat_number, 'price', t.price,
        'paidAt', boxoffice_ts(t.paid_at), 'refundedAt', boxoffice_ts(t.refunded_at))
    FROM schedules sc
    JOIN concerts c ON c.id = sc.concert_id
    JOIN seats s ON s.schedule_id = t.schedule_id AND s.number = t.seat_number
    WHERE sc.id = t.schedule_id
$$;

-- Every ticket of p_user, refunded ones too, the next show first.
CREATE OR REPLACE FUNCTION boxoffice_tickets_json(p_user uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('userId', p_user, 'tickets', COALESCE(json_agg(
               boxoffice_ticket_json(t) ORDER BY sc.starts_at, t.paid_at, t.seat_number),
               '[]'::json))::text
    FROM tickets t JOIN schedules sc ON sc.id = t.schedule_id
    WHERE t.user_id = p_user
$$;

-- The door's check of a code, for a door credential of concert p_concert:
-- NULL for an unknown code; else valid true only for a VALID ticket of
-- that concert, with reason REFUNDED or WRONG_CONCERT when not. The
-- holder's identity is not the door's to read.
CREATE OR REPLACE FUNCTION boxoffice_ticket_door(p_code text, p_concert bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
               'valid', t.status = 'VALID' AND sc.concert_id = p_concert,
               'reason', CASE WHEN t.status <> 'VALID' THEN t.status
                              WHEN sc.concert_id <> p_concert THEN 'WRONG_CONCERT' END,
               'code', t.code, 'state', t.status,
               'concertId', c.id, 'concertTitle', c.title, 'venue', c.venue,
               'scheduleId', t.schedule_id, 'startsAt', boxoffice_ts(sc.starts_at),
               'section', s.section, 'row', s.seat_row, 'label', s.label,
               'seatNumber', t.seat_number)::text
    FROM tickets t
    JOIN schedules sc ON sc.id = t.schedule_id
    JOIN concerts c ON c.id = sc.concert_id
    JOIN seats s ON s.schedule_id = t.schedule_id AND s.number = t.seat_number
    WHERE t.code = p_code
$$;

-- Refund p_user's ticket p_ticket: until p_cutoff_hours before its show,
-- the price goes back to the balance (a REFUND ledger entry naming the
-- payment), the seat is AVAILABLE at once, the reservation and the ticket
-- REFUNDED, all in one statement. Refunding a REFUNDED ticket answers it
-- again and moves nothing. Another user's ticket is not found.
--
-- Besides the answer: refunded_amount (NULL unless a refund happened now)
-- and refund_schedule (the seat map to void) for the worker.
CREATE OR REPLACE FUNCTION boxoffice_refund(p_ticket uuid, p_user uuid, p_cutoff_hours integer,
                                            OUT code text, OUT body text,
                                            OUT refunded_amount bigint,
                                            OUT refund_schedule bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t tickets;
    bal bigint;
    starts timestamptz;
    res uuid;
BEGIN
    -- The user's row serialises every refund of this user's tickets: the
    -- ticket is read after it, so a second refund sees the first's.
    SELECT balance INTO bal FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'TICKET_NOT_FOUND'; RETURN;
    END IF;
    SELECT * INTO t FROM tickets WHERE id = p_ticket AND user_id = p_user;
    IF NOT FOUND THEN
        code := 'TICKET_NOT_FOUND'; RETURN;
    END IF;
    refund_schedule := t.schedule_id;
    IF t.status = 'REFUNDED' THEN
        code := 'OK';
        body := boxoffice_ticket_json(t)::text;
        RETURN;
    END IF;
    SELECT sc.starts_at INTO starts FROM schedules sc WHERE sc.id = t.schedule_id;
    IF now() >= starts - make_interval(hours => p_cutoff_hours) THEN
        code := 'REFUND_CLOSED'; RETURN;
    END IF;
    IF bal > boxoffice_balance_max() - t.price THEN
        code := 'BALANCE_LIMIT'; RETURN;
    END IF;
    -- The seat is SOLD on this ticket's reservation while the ticket is
    -- VALID: holds and payments leave a SOLD seat alone.
    SELECT p.reservation_id INTO res FROM payments p WHERE p.id = t.payment_id;
    PERFORM 1 FROM seats s WHERE s.schedule_id = t.schedule_id AND s.number = t.seat_number
    FOR UPDATE;

    WITH tk AS (
        UPDATE tickets SET status = 'REFUNDED', refunded_at = now()
        WHERE id = p_ticket
    ), u AS (
        UPDATE users SET balance = balance + t.price WHERE id = p_user
        RETURNING balance
    ), l AS (
        INSERT INTO ledger (user_id, amount, kind, payment_id, balance_after)
        SELECT p_user, t.price, 'REFUND', t.payment_id, u.balance FROM u
        WHERE t.price > 0
    ), rv AS (
        UPDATE reservations SET status = 'REFUNDED' WHERE id = res
    ), st AS (
        UPDATE seats SET status = 'AVAILABLE', holder = NULL, hold_expires_at = NULL,
                         reservation_id = NULL
        WHERE seats.schedule_id = t.schedule_id AND seats.number = t.seat_number
          AND seats.reservation_id = res
    )
    SELECT count(*) INTO bal FROM u;
    -- A new statement, so it sees the ticket refunded.
    SELECT boxoffice_ticket_json(x)::text INTO body FROM tickets x WHERE x.id = p_ticket;
    code := 'OK';
    refunded_amount := t.price;
END
$$;
