-- 010_tickets.sql: tickets, one per seat paid, and refunds.
--
-- A ticket is what a buyer shows at the door: the payment of one seat,
-- with an unguessable code, VALID until it is refunded. A refund puts the
-- seat back on sale, so a seat may be paid more than once over time: the
-- rule "one payment per seat" becomes "one VALID ticket per seat"
-- (tickets_one_valid), and a refunded seat's reservation leaves PAID for
-- REFUNDED, so that reservations_one_paid still allows one sale at a time.

-- A door code: 20 characters of Crockford's base32 (0-9, A-Z without I, L,
-- O, U), 100 random bits. gen_random_uuid() is the core server's strong
-- random source (no extension needed); a version 4 UUID has 122 random
-- bits, of which the 112 outside the bytes that carry the version and the
-- variant are used. Volatile and not inlined: one new code per call.
CREATE FUNCTION boxoffice_ticket_code() RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    u bytea := uuid_send(gen_random_uuid());
    b bytea;
    out text := '';
    v integer;
    i integer;
BEGIN
    b := substr(u, 1, 6) || substr(u, 8, 1) || substr(u, 10, 7);
    FOR i IN 0..19 LOOP
        v := get_bit(b, i * 5) * 16 + get_bit(b, i * 5 + 1) * 8 + get_bit(b, i * 5 + 2) * 4
             + get_bit(b, i * 5 + 3) * 2 + get_bit(b, i * 5 + 4);
        out := out || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', v + 1, 1);
    END LOOP;
    RETURN out;
END
$$;

-- The ticket's CHECK, a function for the reason 001_schema.sql gives.
CREATE FUNCTION boxoffice_ticket_valid(p_price bigint, p_status text, p_refunded timestamptz,
                                       p_code text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_price >= 0
        AND p_status IN ('VALID', 'REFUNDED')
        AND (p_status = 'REFUNDED') = (p_refunded IS NOT NULL)
        AND length(p_code) = 20;
END
$$;

-- User, schedule, seat and price are the payment's own, copied so that a
-- ticket list and a door check read one row; the payment is the only
-- foreign key, to keep the payment's insert cheap (each one is a trigger).
CREATE TABLE tickets (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL,
    schedule_id  bigint NOT NULL,
    seat_number  integer NOT NULL,
    payment_id   uuid NOT NULL,
    price        bigint NOT NULL,
    paid_at      timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'VALID',
    refunded_at  timestamptz,
    code         text NOT NULL DEFAULT boxoffice_ticket_code(),
    CONSTRAINT tickets_pkey PRIMARY KEY (id),
    CONSTRAINT tickets_one_per_payment UNIQUE (payment_id),
    CONSTRAINT tickets_code_unique UNIQUE (code),
    CONSTRAINT tickets_payment_fkey FOREIGN KEY (payment_id) REFERENCES payments (id),
    -- price >= 0, VALID or REFUNDED, refunded_at set exactly when
    -- REFUNDED, a code of 20 characters.
    CONSTRAINT tickets_valid CHECK (boxoffice_ticket_valid(price, status, refunded_at, code))
);
-- No seat is sold twice among the tickets that are still good.
CREATE UNIQUE INDEX tickets_one_valid ON tickets (schedule_id, seat_number)
    WHERE status = 'VALID';
CREATE INDEX tickets_user ON tickets (user_id, paid_at);

-- Every payment made before tickets existed is a VALID ticket.
INSERT INTO tickets (user_id, schedule_id, seat_number, payment_id, price, paid_at)
SELECT user_id, schedule_id, seat_number, id, amount, created_at
FROM payments ORDER BY created_at;

-- A seat may be paid again once its ticket is refunded.
ALTER TABLE payments DROP CONSTRAINT payments_one_per_seat;

-- A refunded sale's reservation is REFUNDED (it stays ended).
CREATE OR REPLACE FUNCTION boxoffice_reservation_valid(p_price bigint, p_status text,
                                                       p_ended timestamptz) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_price >= 0
        AND p_status IN ('HELD', 'RELEASED', 'EXPIRED', 'PAID', 'REFUNDED')
        AND (p_status = 'HELD') = (p_ended IS NULL);
END
$$;

-- A REFUND entry gives a payment's amount back: positive, and naming the
-- payment it returns, as a PAYMENT entry names the payment it takes.
CREATE OR REPLACE FUNCTION boxoffice_ledger_valid(p_amount bigint, p_kind text, p_payment uuid,
                                                  p_balance_after bigint) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_amount <> 0
        AND p_kind IN ('OPENING', 'CHARGE', 'PAYMENT', 'REFUND')
        AND p_balance_after >= 0
        AND (p_kind IN ('PAYMENT', 'REFUND')) = (p_payment IS NOT NULL)
        AND (p_kind = 'PAYMENT') = (p_amount < 0);
END
$$;
