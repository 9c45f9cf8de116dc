-- 06_sweep.sql: bookkeeping of expired holds and old Idempotency-Keys.

-- Tidy holds that have expired: bookkeeping only, readers already treat
-- them as available. Also forgets Idempotency-Key records after a day.
-- Returns how many holds were tidied.
CREATE OR REPLACE FUNCTION boxoffice_sweep() RETURNS integer
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
