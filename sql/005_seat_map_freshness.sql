-- 005_seat_map_freshness.sql: a seat map without live holds stays true until a seat changes.
--
-- fresh_ms said "one second" when no hold was pending. Every hold, release
-- and sale now voids the Redis copy of the map through a change counter
-- (src/seatcache.c), so time alone can only change a map through a hold
-- running out. Without one, fresh_ms is the largest integer and the
-- worker's booking.seat_cache_ms is the only limit.
CREATE OR REPLACE FUNCTION boxoffice_seats_json(p_concert bigint, p_schedule bigint,
                                                OUT body text, OUT fresh_ms integer)
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('scheduleId', sc.id, 'seats', COALESCE((
               SELECT json_agg(json_build_object('number', s.number, 'price', s.price,
                                                 'status', boxoffice_seat_status(s))
                               ORDER BY s.number)
               FROM seats s WHERE s.schedule_id = sc.id), '[]'::json))::text,
           COALESCE((SELECT least(floor(extract(epoch FROM min(s.hold_expires_at) - now())
                                        * 1000), 2147483647)
                     FROM seats s WHERE s.schedule_id = sc.id AND s.status = 'HELD'
                       AND s.hold_expires_at > now()), 2147483647)::integer
    FROM schedules sc WHERE sc.id = p_schedule AND sc.concert_id = p_concert
$$;
