-- 001_schema.sql: concerts, seats, users, money and the constraints that
-- keep the booking invariants true even if application code is wrong.

CREATE TABLE concerts (
    id          bigint PRIMARY KEY CHECK (id > 0),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    venue       text NOT NULL DEFAULT '',
    on_sale     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE schedules (
    id           bigint PRIMARY KEY CHECK (id > 0),
    concert_id   bigint NOT NULL REFERENCES concerts (id),
    starts_at    timestamptz NOT NULL,
    total_seats  integer NOT NULL CHECK (total_seats >= 0)
);
CREATE INDEX schedules_concert ON schedules (concert_id, starts_at);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    -- Denormalised sum of the ledger, kept in the same transaction as every
    -- ledger insert; the CHECK makes a negative balance impossible.
    balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A seat row is the unit of locking: every hold, release and sale updates
-- exactly this row, so concurrent attempts on one seat serialise on it.
-- A HELD seat whose hold_expires_at has passed counts as AVAILABLE on read.
CREATE TABLE seats (
    schedule_id      bigint NOT NULL REFERENCES schedules (id),
    number           integer NOT NULL CHECK (number > 0),
    price            bigint NOT NULL CHECK (price >= 0),
    status           text NOT NULL DEFAULT 'AVAILABLE'
                     CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    holder           uuid REFERENCES users (id),
    hold_expires_at  timestamptz,
    reservation_id   uuid,
    PRIMARY KEY (schedule_id, number),
    CHECK ((status = 'AVAILABLE') = (holder IS NULL)),
    CHECK ((status = 'AVAILABLE') = (reservation_id IS NULL)),
    CHECK ((status = 'HELD') = (hold_expires_at IS NOT NULL))
);
CREATE INDEX seats_holder ON seats (holder, schedule_id) WHERE status = 'HELD';
CREATE INDEX seats_expiry ON seats (hold_expires_at) WHERE status = 'HELD';

CREATE TABLE reservations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    schedule_id  bigint NOT NULL,
    seat_number  integer NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id),
    price        bigint NOT NULL CHECK (price >= 0),
    status       text NOT NULL DEFAULT 'HELD'
                 CHECK (status IN ('HELD', 'RELEASED', 'EXPIRED', 'PAID')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    FOREIGN KEY (schedule_id, seat_number) REFERENCES seats (schedule_id, number),
    CHECK ((status = 'HELD') = (ended_at IS NULL))
);
-- At most one live hold and at most one sale per seat, whatever the code does.
CREATE UNIQUE INDEX reservations_one_held ON reservations (schedule_id, seat_number)
    WHERE status = 'HELD';
CREATE UNIQUE INDEX reservations_one_paid ON reservations (schedule_id, seat_number)
    WHERE status = 'PAID';
CREATE INDEX reservations_user ON reservations (user_id, created_at);

CREATE TABLE payments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id  uuid NOT NULL UNIQUE REFERENCES reservations (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    schedule_id     bigint NOT NULL,
    seat_number     integer NOT NULL,
    amount          bigint NOT NULL CHECK (amount >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schedule_id, seat_number)
);

-- Every change of a balance, with the balance it left. Invariant:
-- users.balance = sum(ledger.amount) for that user.
CREATE TABLE ledger (
    id             bigserial PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    amount         bigint NOT NULL CHECK (amount <> 0),
    kind           text NOT NULL CHECK (kind IN ('OPENING', 'CHARGE', 'PAYMENT')),
    payment_id     uuid REFERENCES payments (id),
    balance_after  bigint NOT NULL CHECK (balance_after >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'PAYMENT') = (payment_id IS NOT NULL)),
    CHECK ((kind = 'PAYMENT') = (amount < 0))
);
CREATE INDEX ledger_user ON ledger (user_id, id);

-- Idempotency-Key records: the first answer to (user, scope, key) is kept
-- and replayed; request_hash tells a replay from a different request.
CREATE TABLE idempotency_keys (
    user_id       uuid NOT NULL REFERENCES users (id),
    scope         text NOT NULL CHECK (scope IN ('charge', 'payment')),
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    request_hash  text NOT NULL,
    status        integer NOT NULL,
    response      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope, key)
);
