-- 05_money.sql: the two operations that move money: charging a balance and
-- paying a hold from it (see 04_holds.sql for what every booking function
-- promises). Both lock the user row first, which serialises every change
-- of that balance and every use of that user's Idempotency-Keys, and write
-- the balance, the ledger entry and the key record in one statement.

-- Add p_amount to p_user's balance, with a ledger entry.
CREATE OR REPLACE FUNCTION boxoffice_charge(p_user uuid, p_amount bigint, p_key text,
                                            OUT code text, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    bal bigint;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        code := 'INVALID_AMOUNT'; RETURN;
    END IF;
    -- The row lock also serialises retries carrying the same key: the
    -- look-up below starts after it, so it sees the first one's record.
    SELECT balance INTO bal FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'USER_NOT_FOUND'; RETURN;
    END IF;
    IF p_key IS NOT NULL THEN
        SELECT k.code, k.body INTO code, body
        FROM boxoffice_idem_lookup(p_user, 'charge', p_key, p_amount::text) k;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF bal > 9000000000000000000 - p_amount THEN
        code := 'BALANCE_LIMIT'; RETURN;
    END IF;
    -- The ledger and the key record take the balance the update left.
    WITH u AS (
        UPDATE users SET balance = balance + p_amount WHERE id = p_user
        RETURNING balance
    ), l AS (
        INSERT INTO ledger (user_id, amount, kind, balance_after)
        SELECT p_user, p_amount, 'CHARGE', u.balance FROM u
    ), b AS (
        SELECT json_build_object('userId', p_user, 'balance', u.balance,
                                 'charged', p_amount)::text AS answer
        FROM u
    ), k AS (
        INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status, response)
        SELECT p_user, 'charge', p_key, p_amount::text, 200, b.answer FROM b
        WHERE p_key IS NOT NULL
    )
    SELECT b.answer INTO body FROM b;
    code := 'OK';
END
$$;

-- Pay p_user's live hold p_reservation (of concert p_concert) from the
-- balance. paid_amount and paid_schedule tell the worker what was paid for
-- without parsing its own answer.
CREATE OR REPLACE FUNCTION boxoffice_pay(p_user uuid, p_reservation uuid, p_concert bigint,
                                         p_key text, OUT code text, OUT body text,
                                         OUT paid_amount bigint, OUT paid_schedule bigint)
LANGUAGE plpgsql AS $$
DECLARE
    bal bigint;
    k_code text;
    k_body text;
    r_schedule bigint;
    r_seat integer;
    r_price bigint;
    r_status text;
    on_concert boolean;
    s_status text;
    s_holder uuid;
    s_expires timestamptz;
    s_reservation uuid;
BEGIN
    SELECT balance INTO bal FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'USER_NOT_FOUND'; RETURN;
    END IF;

    -- One statement, started after the user lock (which any other payment
    -- with this key holds until it commits), reads the key record, the
    -- reservation, its concert, and locks the seat. The reservation's
    -- schedule, seat, user and price never change, so the row read before
    -- a wait for the seat lock is still right after it; the seat row is
    -- read again once locked.
    SELECT k.code, k.body, r.schedule_id, r.seat_number, r.price,
           sc.id IS NOT NULL, s.status, s.holder, s.hold_expires_at, s.reservation_id
    INTO k_code, k_body, r_schedule, r_seat, r_price,
         on_concert, s_status, s_holder, s_expires, s_reservation
    FROM reservations r
    JOIN seats s ON s.schedule_id = r.schedule_id AND s.number = r.seat_number
    LEFT JOIN schedules sc ON sc.id = r.schedule_id AND sc.concert_id = p_concert
    LEFT JOIN LATERAL boxoffice_idem_lookup(p_user, 'payment', p_key,
                                            p_reservation::text) k ON true
    WHERE r.id = p_reservation AND r.user_id = p_user
    FOR UPDATE OF s;
    IF NOT FOUND AND p_key IS NOT NULL THEN
        SELECT k.code, k.body INTO k_code, k_body
        FROM boxoffice_idem_lookup(p_user, 'payment', p_key, p_reservation::text) k;
    END IF;
    IF k_code IS NOT NULL THEN
        code := k_code; body := k_body;
        RETURN;
    END IF;
    IF r_schedule IS NULL THEN
        code := 'RESERVATION_NOT_FOUND'; RETURN;
    END IF;
    IF NOT on_concert THEN
        code := 'WRONG_CONCERT'; RETURN;
    END IF;
    -- The locked seat proves a live hold on its own: every writer of a hold
    -- locks the seat first and changes seat and reservation together. Only
    -- when it does not is the reservation read, to tell why.
    IF (s_status = 'HELD' AND s_reservation = p_reservation AND s_holder = p_user
        AND s_expires > now()) IS NOT TRUE THEN
        SELECT status INTO r_status FROM reservations WHERE id = p_reservation;
        code := CASE WHEN r_status = 'PAID' THEN 'ALREADY_PAID' ELSE 'HOLD_EXPIRED' END;
        RETURN;
    END IF;
    IF bal < r_price THEN
        code := 'INSUFFICIENT_BALANCE'; RETURN;
    END IF;

    -- The ledger, the answer and the key record take the balance the
    -- update left; the ledger's payment reference is checked at the end of
    -- the statement, when the payment row exists. The seat keeps its
    -- reservation, now the sale's.
    WITH u AS (
        UPDATE users SET balance = balance - r_price WHERE id = p_user
        RETURNING balance
    ), p AS (
        INSERT INTO payments (reservation_id, user_id, schedule_id, seat_number, amount)
        VALUES (p_reservation, p_user, r_schedule, r_seat, r_price)
        RETURNING id
    ), l AS (
        INSERT INTO ledger (user_id, amount, kind, payment_id, balance_after)
        SELECT p_user, -r_price, 'PAYMENT', p.id, u.balance FROM p, u
        WHERE r_price > 0
    ), rv AS (
        UPDATE reservations SET status = 'PAID', ended_at = now() WHERE id = p_reservation
    ), st AS (
        UPDATE seats SET status = 'SOLD', hold_expires_at = NULL
        WHERE seats.schedule_id = r_schedule AND seats.number = r_seat
    ), b AS (
        SELECT json_build_object('id', p.id, 'reservationId', p_reservation,
                                 'amount', r_price, 'balance', u.balance,
                                 'scheduleId', r_schedule, 'seatNumber', r_seat)::text AS answer
        FROM p, u
    ), k AS (
        INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status, response)
        SELECT p_user, 'payment', p_key, p_reservation::text, 201, b.answer FROM b
        WHERE p_key IS NOT NULL
    )
    SELECT b.answer INTO body FROM b;
    code := 'OK';
    paid_amount := r_price;
    paid_schedule := r_schedule;
END
$$;
