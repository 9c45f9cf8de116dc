-- 02_catalog.sql: what a visitor reads: concerts, schedules, the seat map,
-- each as the API's JSON answer built in one statement.

-- The concert list. saleState is the sale window as of the answer:
-- UPCOMING before sale_opens_at, CLOSED from sale_closes_at on, else
-- ON_SALE (a cached copy is as old as cache.ttl_ms at most).
CREATE OR REPLACE FUNCTION boxoffice_concerts_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('concerts', COALESCE(json_agg(json_build_object(
               'id', c.id, 'title', c.title, 'venue', c.venue,
               'onSale', c.on_sale,
               'saleOpensAt', boxoffice_ts(c.sale_opens_at),
               'saleClosesAt', boxoffice_ts(c.sale_closes_at),
               'saleState', CASE WHEN c.sale_opens_at > now() THEN 'UPCOMING'
                                 WHEN c.sale_closes_at <= now() THEN 'CLOSED'
                                 ELSE 'ON_SALE' END,
               'firstShow', boxoffice_ts((SELECT min(starts_at) FROM schedules
                                          WHERE concert_id = c.id)))
               ORDER BY c.id), '[]'::json))::text
    FROM concerts c WHERE c.on_sale
$$;

-- Schedules of a concert with their available seats; NULL if no such concert.
CREATE OR REPLACE FUNCTION boxoffice_schedules_json(p_concert bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('concertId', c.id, 'schedules', COALESCE((
        SELECT json_agg(json_build_object(
                   'id', sc.id, 'startsAt', boxoffice_ts(sc.starts_at),
                   'availableSeats', (SELECT count(*) FROM seats s
                                      WHERE s.schedule_id = sc.id
                                        AND (s.status = 'AVAILABLE'
                                             OR (s.status = 'HELD'
                                                 AND s.hold_expires_at <= now()))),
                   'totalSeats', sc.total_seats) ORDER BY sc.starts_at, sc.id)
        FROM schedules sc WHERE sc.concert_id = c.id), '[]'::json))::text
    FROM concerts c WHERE c.id = p_concert
$$;

-- Every seat of a schedule, in one pass over its rows; no row if the
-- schedule is not the concert's. fresh_ms says how long the answer stays
-- true: until the earliest end of a live hold among them, so a cache of it
-- never shows an expired hold as HELD. Every hold, release, sale and refund
-- voids the Redis copy of the map through a change counter (src/seatcache.c), so
-- with no hold pending fresh_ms is the largest integer and the worker's
-- booking.seat_cache_ms is the only limit. The expiry is read from the rows
-- listed anyway, never through an index of every live hold of the sale.
CREATE OR REPLACE FUNCTION boxoffice_seats_json(p_concert bigint, p_schedule bigint,
                                                OUT body text, OUT fresh_ms integer)
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('scheduleId', sc.id, 'seats', COALESCE(m.seats, '[]'::json))::text,
           COALESCE(least(floor(extract(epoch FROM m.next_end - now()) * 1000),
                          2147483647), 2147483647)::integer
    FROM schedules sc
    CROSS JOIN LATERAL (
        SELECT json_agg(json_build_object('number', s.number, 'price', s.price,
                                          'status', boxoffice_seat_status(s),
                                          'section', s.section, 'row', s.seat_row,
                                          'label', s.label, 'tier', s.tier)
                        ORDER BY s.number) AS seats,
               min(s.hold_expires_at) FILTER (WHERE s.status = 'HELD'
                                                AND s.hold_expires_at > now()) AS next_end
        FROM seats s WHERE s.schedule_id = sc.id) m
    WHERE sc.id = p_schedule AND sc.concert_id = p_concert
$$;
