-- 001_schema.sql: concerts, seats, users, money and the constraints that
-- keep the booking invariants true even if application code is wrong.
--
-- Every constraint is named here; docs/schema.md says which invariant each
-- one enforces and which ones only the functions in sql/functions/ guard.
-- Databases created before these names are brought to this same schema by
-- 007_named_constraints.sql.

-- CHECK constraints are kept as text and parsed again, with their
-- expressions planned, by every statement that writes the table: for a
-- payment that was a sixth of PostgreSQL's CPU. So the checks of the tables
-- written on every booking are one call of a PL/pgSQL function each, whose
-- compiled form is cached for the session, and the text left to parse per
-- statement is a short call. AND of the conditions fails exactly when one of
-- them fails, and passes on NULL as a CHECK does. Not SQL functions: those
-- would be inlined, parsed from their source each time. They belong to the
-- tables, not to sql/functions/: a change of one is a migration that checks
-- the existing rows again.

CREATE FUNCTION boxoffice_seat_valid(p_number integer, p_price bigint, p_status text,
                                     p_holder uuid, p_expires timestamptz,
                                     p_reservation uuid) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_number > 0 AND p_price >= 0
        AND p_status IN ('AVAILABLE', 'HELD', 'SOLD')
        AND (p_status = 'AVAILABLE') = (p_holder IS NULL)
        AND (p_status = 'AVAILABLE') = (p_reservation IS NULL)
        AND (p_status = 'HELD') = (p_expires IS NOT NULL);
END
$$;

CREATE FUNCTION boxoffice_reservation_valid(p_price bigint, p_status text,
                                            p_ended timestamptz) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_price >= 0
        AND p_status IN ('HELD', 'RELEASED', 'EXPIRED', 'PAID')
        AND (p_status = 'HELD') = (p_ended IS NULL);
END
$$;

CREATE FUNCTION boxoffice_ledger_valid(p_amount bigint, p_kind text, p_payment uuid,
                                       p_balance_after bigint) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_amount <> 0
        AND p_kind IN ('OPENING', 'CHARGE', 'PAYMENT')
        AND p_balance_after >= 0
        AND (p_kind = 'PAYMENT') = (p_payment IS NOT NULL)
        AND (p_kind = 'PAYMENT') = (p_amount < 0);
END
$$;

CREATE FUNCTION boxoffice_idem_valid(p_scope text, p_key text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_scope IN ('charge', 'payment') AND length(p_key) BETWEEN 1 AND 128;
END
$$;

CREATE TABLE concerts (
    id          bigint NOT NULL,
    title       text NOT NULL,
    venue       text NOT NULL DEFAULT '',
    on_sale     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT concerts_pkey PRIMARY KEY (id),
    CONSTRAINT concerts_id_positive CHECK (id > 0),
    CONSTRAINT concerts_title_length CHECK (length(title) BETWEEN 1 AND 200)
);

CREATE TABLE schedules (
    id           bigint NOT NULL,
    concert_id   bigint NOT NULL,
    starts_at    timestamptz NOT NULL,
    total_seats  integer NOT NULL,
    CONSTRAINT schedules_pkey PRIMARY KEY (id),
    CONSTRAINT schedules_concert_fkey FOREIGN KEY (concert_id) REFERENCES concerts (id),
    CONSTRAINT schedules_id_positive CHECK (id > 0),
    CONSTRAINT schedules_total_seats_not_negative CHECK (total_seats >= 0)
);
CREATE INDEX schedules_concert ON schedules (concert_id, starts_at);

CREATE TABLE users (
    id          uuid NOT NULL,
    name        text NOT NULL DEFAULT '',
    -- Denormalised sum of the ledger, kept in the same transaction as every
    -- ledger insert; the CHECK makes a negative balance impossible.
    balance     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_balance_not_negative CHECK (balance >= 0)
);

-- A seat row is the unit of locking: every hold, release and sale updates
-- exactly this row, so concurrent attempts on one seat serialise on it.
-- A HELD seat whose hold_expires_at has passed counts as AVAILABLE on read.
-- reservation_id is the hold (HELD) or the sale (SOLD) the seat is in.
CREATE TABLE seats (
    schedule_id      bigint NOT NULL,
    number           integer NOT NULL,
    price            bigint NOT NULL,
    status           text NOT NULL DEFAULT 'AVAILABLE',
    holder           uuid,
    hold_expires_at  timestamptz,
    reservation_id   uuid,
    CONSTRAINT seats_pkey PRIMARY KEY (schedule_id, number),
    CONSTRAINT seats_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id),
    CONSTRAINT seats_holder_fkey FOREIGN KEY (holder) REFERENCES users (id),
    -- number > 0, price >= 0, a known status, and holder and reservation
    -- set exactly when not AVAILABLE, hold_expires_at exactly when HELD.
    CONSTRAINT seats_valid CHECK (boxoffice_seat_valid(number, price, status, holder,
                                                       hold_expires_at, reservation_id))
);
-- One user's live holds in one schedule, with their expiry: the hold
-- limit's count is answered within them whatever the statistics say (a
-- sale opens with no seat held, and an index of every live hold by expiry
-- made that count read all the holds of the sale). The sweeper, the only
-- reader without a user or a schedule, scans this small partial index.
CREATE INDEX seats_holder ON seats (holder, schedule_id, hold_expires_at)
    WHERE status = 'HELD';

CREATE TABLE reservations (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    schedule_id  bigint NOT NULL,
    seat_number  integer NOT NULL,
    user_id      uuid NOT NULL,
    price        bigint NOT NULL,
    status       text NOT NULL DEFAULT 'HELD',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    CONSTRAINT reservations_pkey PRIMARY KEY (id),
    CONSTRAINT reservations_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT reservations_seat_fkey FOREIGN KEY (schedule_id, seat_number)
        REFERENCES seats (schedule_id, number),
    -- price >= 0, a known status, ended_at set exactly when no longer HELD.
    CONSTRAINT reservations_valid CHECK (boxoffice_reservation_valid(price, status, ended_at))
);
-- At most one live hold and at most one sale per seat, whatever the code does.
CREATE UNIQUE INDEX reservations_one_held ON reservations (schedule_id, seat_number)
    WHERE status = 'HELD';
CREATE UNIQUE INDEX reservations_one_paid ON reservations (schedule_id, seat_number)
    WHERE status = 'PAID';
CREATE INDEX reservations_user ON reservations (user_id, created_at);

-- A seat points at its hold or sale, so the reservation must exist: the
-- writers insert a reservation before they point a seat at it, and never
-- delete one. Checked only when a seat gets a new reservation (a hold).
ALTER TABLE seats ADD CONSTRAINT seats_reservation_fkey
    FOREIGN KEY (reservation_id) REFERENCES reservations (id);

CREATE TABLE payments (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    reservation_id  uuid NOT NULL,
    user_id         uuid NOT NULL,
    schedule_id     bigint NOT NULL,
    seat_number     integer NOT NULL,
    amount          bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_pkey PRIMARY KEY (id),
    CONSTRAINT payments_one_per_reservation UNIQUE (reservation_id),
    CONSTRAINT payments_one_per_seat UNIQUE (schedule_id, seat_number),
    CONSTRAINT payments_reservation_fkey FOREIGN KEY (reservation_id)
        REFERENCES reservations (id),
    CONSTRAINT payments_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT payments_amount_not_negative CHECK (amount >= 0)
);

-- Every change of a balance, with the balance it left. Invariant:
-- users.balance = sum(ledger.amount) for that user.
CREATE TABLE ledger (
    id             bigserial NOT NULL,
    user_id        uuid NOT NULL,
    amount         bigint NOT NULL,
    kind           text NOT NULL,
    payment_id     uuid,
    balance_after  bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_pkey PRIMARY KEY (id),
    CONSTRAINT ledger_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT ledger_payment_fkey FOREIGN KEY (payment_id) REFERENCES payments (id),
    -- amount <> 0, a known kind, balance_after >= 0, and a payment (with a
    -- negative amount) exactly when the kind is PAYMENT.
    CONSTRAINT ledger_valid CHECK (boxoffice_ledger_valid(amount, kind, payment_id,
                                                          balance_after))
);
CREATE INDEX ledger_user ON ledger (user_id, id);

-- Idempotency-Key records: the first answer to (user, scope, key) is kept
-- and replayed; request_hash tells a replay from a different request.
CREATE TABLE idempotency_keys (
    user_id       uuid NOT NULL,
    scope         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status        integer NOT NULL,
    response      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, scope, key),
    CONSTRAINT idempotency_keys_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    -- scope 'charge' or 'payment', a key of 1 to 128 characters.
    CONSTRAINT idempotency_keys_valid CHECK (boxoffice_idem_valid(scope, key))
);
