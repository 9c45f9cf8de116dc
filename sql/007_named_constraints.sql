-- 007_named_constraints.sql: databases created before 001_schema.sql named
-- its constraints get those names and the seat's reference to its
-- reservation, so that they have the schema a new database has.
--
-- Such a database ran the migrations 001 to 006 of before, which created
-- the tables with the names PostgreSQL makes up (users_balance_check, ...),
-- the booking functions (now in sql/functions/, applied after every
-- migrate) and no foreign key on seats.reservation_id. A database created
-- from 001_schema.sql as it is now has nothing to do here.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'users'::regclass AND conname = 'users_balance_check') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '006_hold_indexes.sql') THEN
        RAISE EXCEPTION 'this database has not run 006_hold_indexes.sql: migrate it with the '
                        'release that has sql/006_hold_indexes.sql first';
    END IF;

    ALTER TABLE concerts RENAME CONSTRAINT concerts_id_check TO concerts_id_positive;
    ALTER TABLE concerts RENAME CONSTRAINT concerts_title_check TO concerts_title_length;
    ALTER TABLE schedules RENAME CONSTRAINT schedules_concert_id_fkey TO schedules_concert_fkey;
    ALTER TABLE schedules RENAME CONSTRAINT schedules_id_check TO schedules_id_positive;
    ALTER TABLE schedules RENAME CONSTRAINT schedules_total_seats_check
        TO schedules_total_seats_not_negative;
    ALTER TABLE users RENAME CONSTRAINT users_balance_check TO users_balance_not_negative;
    ALTER TABLE seats RENAME CONSTRAINT seats_schedule_id_fkey TO seats_schedule_fkey;
    ALTER TABLE reservations RENAME CONSTRAINT reservations_user_id_fkey
        TO reservations_user_fkey;
    ALTER TABLE reservations RENAME CONSTRAINT reservations_schedule_id_seat_number_fkey
        TO reservations_seat_fkey;
    ALTER TABLE payments RENAME CONSTRAINT payments_reservation_id_key
        TO payments_one_per_reservation;
    ALTER TABLE payments RENAME CONSTRAINT payments_schedule_id_seat_number_key
        TO payments_one_per_seat;
    ALTER TABLE payments RENAME CONSTRAINT payments_reservation_id_fkey
        TO payments_reservation_fkey;
    ALTER TABLE payments RENAME CONSTRAINT payments_user_id_fkey TO payments_user_fkey;
    ALTER TABLE payments RENAME CONSTRAINT payments_amount_check TO payments_amount_not_negative;
    ALTER TABLE ledger RENAME CONSTRAINT ledger_user_id_fkey TO ledger_user_fkey;
    ALTER TABLE ledger RENAME CONSTRAINT ledger_payment_id_fkey TO ledger_payment_fkey;
    ALTER TABLE idempotency_keys RENAME CONSTRAINT idempotency_keys_user_id_fkey
        TO idempotency_keys_user_fkey;

    -- Every seat that points at a reservation was pointed at it by the hold
    -- that inserted it, so the existing rows pass.
    ALTER TABLE seats ADD CONSTRAINT seats_reservation_fkey
        FOREIGN KEY (reservation_id) REFERENCES reservations (id);

    -- The look-up of Idempotency-Keys now returns a row only for a known
    -- key, so that it can be inlined into the statements that use it; a
    -- changed result type needs a new function (sql/functions/03_idempotency.sql).
    DROP FUNCTION boxoffice_idem_lookup(uuid, text, text, text);
END
$$;
