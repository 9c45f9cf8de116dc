-- 05_money.sql: the two operations that move money: charging a balance and
-- paying a hold from it (see 04_holds.sql for what every booking function
-- promises). Both lock the user row first, which serialises every change
-- of that balance and every use of that user's Idempotency-Keys, and write
-- the balance, the ledger entry and the key record in one statement.

-- The most a balance may hold (BALANCE_LIMIT beyond it), far enough below
-- bigint's limit that no credit can overflow. Inlined where it is used.
CREATE OR REPLACE FUNCTION boxoffice_balance_max() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 9000000000000000000::bigint $$;

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
    IF bal > boxoffice_balance_max() - p_amount THEN
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

-- Pay p_user's live holds p_reservations (of concert p_concert) from the
-- balance, all of them or none; each seat paid becomes a VALID ticket. p_list chooses the answer: the list form
-- ({"payments": [...], "total", "balance"}) for a request that sent
-- reservationIds, else the one-payment form of a request that sent one
-- reservationId. The request a key is recorded for is that reservation id,
-- or "list:" and the ids in the order sent, comma-separated (src/h_booking.c
-- builds the same text to look a key up after the turn has ended).
--
-- Besides the answer: paid_amount (the total), paid_count, paid_schedules
-- (the distinct schedule ids, comma-separated) tell the worker what was
-- paid for without parsing its own answer; holds_left whether the user
-- still has a live hold in the concert once paid (the turn ends when not).
-- A replay or a refusal leaves the last four NULL.
DROP FUNCTION IF EXISTS boxoffice_pay(uuid, uuid, bigint, text);
CREATE OR REPLACE FUNCTION boxoffice_pay(p_user uuid, p_reservations uuid[], p_concert bigint,
                                         p_key text, p_list boolean,
                                         OUT code text, OUT body text,
                                         OUT paid_amount bigint, OUT paid_count integer,
                                         OUT paid_schedules text, OUT holds_left boolean)
LANGUAGE plpgsql AS $$
DECLARE
    bal bigint;
    total bigint := 0;
    n integer;
    req text;
    h record;
BEGIN
    n := coalesce(cardinality(p_reservations), 0);
    req := CASE WHEN p_list THEN 'list:' || array_to_string(p_reservations, ',')
                ELSE p_reservations[1]::text END;
    SELECT balance INTO bal FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        code := 'USER_NOT_FOUND'; RETURN;
    END IF;
    -- Started after the user lock, which any other payment with this key
    -- holds until it commits: the first one's record is seen.
    IF p_key IS NOT NULL THEN
        SELECT k.code, k.body INTO code, body
        FROM boxoffice_idem_lookup(p_user, 'payment', p_key, req) k;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF n = 0 THEN
        code := 'RESERVATION_NOT_FOUND'; RETURN;
    END IF;

    -- Lock the seats of the user's reservations among them, in seat order
    -- (the rows are locked after the sort), so that two payments of
    -- overlapping seats cannot deadlock. A reservation's schedule, seat,
    -- user and price never change; its seat row is read below, once locked.
    PERFORM 1 FROM reservations r
    JOIN seats s ON s.schedule_id = r.schedule_id AND s.number = r.seat_number
    WHERE r.id = ANY (p_reservations) AND r.user_id = p_user
    ORDER BY s.schedule_id, s.number
    FOR UPDATE OF s;

    -- The first reservation, in the order sent, that cannot be paid refuses
    -- the whole payment with its reason. The locked seat proves a live hold
    -- on its own: every writer of a hold locks the seat first and changes
    -- seat and reservation together.
    FOR h IN
        SELECT i.id, r.id IS NOT NULL AS mine, sc.id IS NOT NULL AS on_concert,
               r.status, r.price,
               (s.status = 'HELD' AND s.reservation_id = i.id AND s.holder = p_user
                AND s.hold_expires_at > now()) IS TRUE AS live
        FROM unnest(p_reservations) WITH ORDINALITY i(id, ord)
        LEFT JOIN reservations r ON r.id = i.id AND r.user_id = p_user
        LEFT JOIN seats s ON s.schedule_id = r.schedule_id AND s.number = r.seat_number
        LEFT JOIN schedules sc ON sc.id = r.schedule_id AND sc.concert_id = p_concert
        ORDER BY i.ord
    LOOP
        IF NOT h.mine THEN
            code := 'RESERVATION_NOT_FOUND'; RETURN;
        END IF;
        IF NOT h.on_concert THEN
            code := 'WRONG_CONCERT'; RETURN;
        END IF;
        IF NOT h.live THEN
            code := CASE WHEN h.status = 'PAID' THEN 'ALREADY_PAID' ELSE 'HOLD_EXPIRED' END;
            RETURN;
        END IF;
        total := total + h.price;
    END LOOP;
    IF bal < total THEN
        code := 'INSUFFICIENT_BALANCE'; RETURN;
    END IF;

    -- One statement writes the outcome. Each ledger entry takes the
    -- balance left after it and the ones before it, in the order sent, so
    -- the last one's is the balance the update leaves; the ledger's
    -- payment references are checked at the end of the statement, when
    -- the payment rows exist. The seats keep their reservations, now sold.
    WITH sel AS (
        SELECT i.ord, r.id, r.schedule_id, r.seat_number, r.price
        FROM unnest(p_reservations) WITH ORDINALITY i(id, ord)
        JOIN reservations r ON r.id = i.id
    ), u AS (
        UPDATE users SET balance = balance - total WHERE id = p_user
        RETURNING balance
    ), p AS (
        INSERT INTO payments (reservation_id, user_id, schedule_id, seat_number, amount)
        SELECT sel.id, p_user, sel.schedule_id, sel.seat_number, sel.price
        FROM sel ORDER BY sel.ord
        RETURNING id, reservation_id
    ), pp AS (
        SELECT sel.*, p.id AS payment_id FROM sel JOIN p ON p.reservation_id = sel.id
    ), t AS (
        -- One ticket per seat paid, with its door code (sql/010_tickets.sql).
        INSERT INTO tickets (user_id, schedule_id, seat_number, payment_id, price, paid_at)
        SELECT p_user, pp.schedule_id, pp.seat_number, pp.payment_id, pp.price, now()
        FROM pp ORDER BY pp.ord
        RETURNING tickets.id, tickets.payment_id, tickets.code
    ), pt AS (
        SELECT pp.*, t.id AS ticket_id, t.code AS ticket_code
        FROM pp JOIN t ON t.payment_id = pp.payment_id
    ), l AS (
        INSERT INTO ledger (user_id, amount, kind, payment_id, balance_after)
        SELECT p_user, -pp.price, 'PAYMENT', pp.payment_id,
               bal - sum(pp.price) OVER (ORDER BY pp.ord)
        FROM pp WHERE pp.price > 0 ORDER BY pp.ord
    ), rv AS (
        UPDATE reservations SET status = 'PAID', ended_at = now()
        WHERE id = ANY (p_reservations)
    ), st AS (
        UPDATE seats SET status = 'SOLD', hold_expires_at = NULL
        FROM sel WHERE seats.schedule_id = sel.schedule_id AND seats.number = sel.seat_number
    ), b AS (
        SELECT CASE WHEN p_list THEN
                   json_build_object(
                       'payments', (SELECT json_agg(json_build_object(
                                        'id', pt.payment_id, 'reservationId', pt.id,
                                        'amount', pt.price, 'scheduleId', pt.schedule_id,
                                        'seatNumber', pt.seat_number,
                                        'ticketId', pt.ticket_id,
                                        'ticketCode', pt.ticket_code) ORDER BY pt.ord)
                                    FROM pt),
                       'total', total, 'balance', u.balance)::text
               ELSE
                   (SELECT json_build_object('id', pt.payment_id, 'reservationId', pt.id,
                                             'amount', pt.price, 'balance', u.balance,
                                             'scheduleId', pt.schedule_id,
                                             'seatNumber', pt.seat_number,
                                             'ticketId', pt.ticket_id,
                                             'ticketCode', pt.ticket_code)::text FROM pt)
               END AS answer,
               (SELECT string_agg(DISTINCT pp.schedule_id::text, ',') FROM pp) AS schedules
        FROM u
    ), k AS (
        INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status, response)
        SELECT p_user, 'payment', p_key, req, 201, b.answer FROM b
        WHERE p_key IS NOT NULL
    )
    SELECT b.answer, b.schedules INTO body, paid_schedules FROM b;
    code := 'OK';
    paid_amount := total;
    paid_count := n;

    -- A new statement, so it sees the seats just sold.
    SELECT EXISTS (
        SELECT 1 FROM seats s JOIN schedules sc ON sc.id = s.schedule_id
        WHERE s.holder = p_user AND s.status = 'HELD' AND s.hold_expires_at > now()
          AND sc.concert_id = p_concert)
    INTO holds_left;
END
$$;
