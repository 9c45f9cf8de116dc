-- 006_hold_indexes.sql: every look-up of holds stays within one user or one schedule.
--
-- A sale opens with no seat HELD, so that is what the statistics say, and
-- the planner then took seats_expiry (hold_expires_at, over every live
-- hold of every schedule) as the cheapest way to count one user's holds:
-- each hold read all the live holds of the sale, and got slower as the
-- sale went on, until the next autoanalyze (16 clients holding seats of
-- a 120,000-seat sale: a third slower by 60,000 held). The same index
-- tempted the seat map's "next hold to run out" look-up into reading
-- every live hold too.
--
-- The user's index now carries the expiry, so the count is answered
-- within that user's holds in that schedule whatever the statistics say;
-- the seat map reads the expiry from the rows it lists anyway; and
-- seats_expiry goes, which also spares every hold, release and sale one
-- index entry. The sweeper, the only reader left without a user or a
-- schedule, scans the (small) partial index of live holds.
DROP INDEX seats_expiry;
DROP INDEX seats_holder;
CREATE INDEX seats_holder ON seats (holder, schedule_id, hold_expires_at)
    WHERE status = 'HELD';

-- Every seat of a schedule, in one pass over its rows: the earliest end of
-- a live hold among them is how long the answer stays true (fresh_ms; the
-- largest integer when none is pending). No row if the schedule is not the
-- concert's.
CREATE OR REPLACE FUNCTION boxoffice_seats_json(p_concert bigint, p_schedule bigint,
                                                OUT body text, OUT fresh_ms integer)
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('scheduleId', sc.id, 'seats', COALESCE(m.seats, '[]'::json))::text,
           COALESCE(least(floor(extract(epoch FROM m.next_end - now()) * 1000),
                          2147483647), 2147483647)::integer
    FROM schedules sc
    CROSS JOIN LATERAL (
        SELECT json_agg(json_build_object('number', s.number, 'price', s.price,
                                          'status', boxoffice_seat_status(s))
                        ORDER BY s.number) AS seats,
               min(s.hold_expires_at) FILTER (WHERE s.status = 'HELD'
                                                AND s.hold_expires_at > now()) AS next_end
        FROM seats s WHERE s.schedule_id = sc.id) m
    WHERE sc.id = p_schedule AND sc.concert_id = p_concert
$$;
