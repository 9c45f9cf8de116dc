-- 10_venues.sql: the catalogue (venues with their seat plans, concerts,
-- schedules, tier prices) as one JSON document: import and export.
--
-- The document's format is docs/catalog.md's; `boxofficectl catalog import`
-- checks its shape first (src/catalog.c) and this function applies it, so
-- that what can only be judged against the database (ids taken, seats held
-- or sold) is judged in the transaction that changes them. A refusal is an
-- error with SQLSTATE BXC01, the message for the operator and as DETAIL the
-- path in the document (concerts[2].prices.premium) that the CLI turns into
-- a line of the file: the transaction then ends with nothing changed.

CREATE OR REPLACE FUNCTION boxoffice_catalog_fail(p_path text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'BXC01', MESSAGE = p_message, DETAIL = p_path;
END
$$;

-- Apply document p_doc; returns how many rows it added, changed or removed
-- (0 when the database already matches it). Things are matched by key:
-- venues by theirs, concerts by theirs, schedules by theirs within their
-- concert. Concerts and venues the document does not name are left alone.
-- With p_prune, the schedules of a named concert that the document no
-- longer lists, the seats its plan no longer has and the prices of tiers it
-- no longer names are removed; without it (the demo seeder) only added or
-- changed. Never changed: a seat held or sold (its place, tier or price),
-- the price of a tier of a schedule in which a seat of that tier is held or
-- sold, and a seat or schedule that a reservation (or anything else)
-- refers to is never removed.
CREATE OR REPLACE FUNCTION boxoffice_catalog_import(p_doc jsonb, p_prune boolean DEFAULT true)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;
    c bigint;
    base bigint;
    bad record;
BEGIN
    -- One import at a time: ids handed out and checks made stay true.
    PERFORM pg_advisory_xact_lock(4243);

    CREATE TEMP TABLE cat_venue ON COMMIT DROP AS
    SELECT (o - 1)::int AS vi, v->>'key' AS key, v->>'name' AS name,
           COALESCE(v->>'city', '') AS city
    FROM jsonb_array_elements(COALESCE(p_doc->'venues', '[]')) WITH ORDINALITY AS t(v, o);

    -- Seats are numbered from 1 in plan order; a seat's label is its row
    -- and its place in that row ("C-12").
    CREATE TEMP TABLE cat_plan ON COMMIT DROP AS
    SELECT vi, row_number() OVER (PARTITION BY vi ORDER BY si, ri, k)::int AS number,
           si, ri, section, seat_row, seat_row || '-' || k AS label, tier
    FROM (SELECT (vo - 1)::int AS vi, (so - 1)::int AS si, (ro - 1)::int AS ri,
                 s->>'name' AS section, r->>'row' AS seat_row, r->>'tier' AS tier, k
          FROM jsonb_array_elements(COALESCE(p_doc->'venues', '[]')) WITH ORDINALITY AS tv(v, vo),
               jsonb_array_elements(v->'sections') WITH ORDINALITY AS ts(s, so),
               jsonb_array_elements(s->'rows') WITH ORDINALITY AS tr(r, ro),
               generate_series(1, (r->>'seats')::int) AS k) x;

    INSERT INTO venues (key, name, city)
    SELECT key, name, city FROM cat_venue ORDER BY vi
    ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, city = EXCLUDED.city
    WHERE (venues.name, venues.city) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.city);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;

    INSERT INTO venue_seats (venue_id, number, section, seat_row, label, tier)
    SELECT v.id, p.number, p.section, p.seat_row, p.label, p.tier
    FROM cat_plan p JOIN cat_venue cv USING (vi) JOIN venues v ON v.key = cv.key
    ON CONFLICT (venue_id, number) DO UPDATE
        SET section = EXCLUDED.section, seat_row = EXCLUDED.seat_row,
            label = EXCLUDED.label, tier = EXCLUDED.tier
    WHERE (venue_seats.section, venue_seats.seat_row, venue_seats.label, venue_seats.tier)
          IS DISTINCT FROM (EXCLUDED.section, EXCLUDED.seat_row, EXCLUDED.label, EXCLUDED.tier);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    IF p_prune THEN
        DELETE FROM venue_seats vs USING venues v, cat_venue cv
        WHERE vs.venue_id = v.id AND v.key = cv.key
          AND NOT EXISTS (SELECT 1 FROM cat_plan p WHERE p.vi = cv.vi AND p.number = vs.number);
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    END IF;

    CREATE TEMP TABLE cat_concert ON COMMIT DROP AS
    SELECT (o - 1)::int AS ci, x->>'key' AS key, (x->>'id')::bigint AS id,
           x->>'title' AS title, x->>'venue' AS venue_key,
           COALESCE((x->>'onSale')::boolean, true) AS on_sale,
           (x->>'saleOpensAt')::timestamptz AS opens,
           (x->>'saleClosesAt')::timestamptz AS closes,
           COALESCE(x->'prices', '{}') AS prices, COALESCE(x->'schedules', '[]') AS schedules
    FROM jsonb_array_elements(COALESCE(p_doc->'concerts', '[]')) WITH ORDINALITY AS t(x, o);

    SELECT cc.ci, cc.venue_key INTO bad FROM cat_concert cc
    WHERE NOT EXISTS (SELECT 1 FROM cat_venue cv WHERE cv.key = cc.venue_key)
    ORDER BY cc.ci LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].venue', bad.ci),
            format('no venue "%s" in this catalogue', bad.venue_key));
    END IF;
    SELECT cc.ci, cc.key, c0.id INTO bad FROM cat_concert cc JOIN concerts c0 ON c0.key = cc.key
    WHERE cc.id IS NOT NULL AND cc.id <> c0.id ORDER BY cc.ci LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].id', bad.ci),
            format('concert "%s" has id %s; an id cannot change', bad.key, bad.id));
    END IF;
    SELECT cc.ci, cc.id, c0.key INTO bad FROM cat_concert cc JOIN concerts c0 ON c0.id = cc.id
    WHERE c0.key <> cc.key ORDER BY cc.ci LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].id', bad.ci),
            format('id %s is concert "%s"''s', bad.id, bad.key));
    END IF;
    UPDATE cat_concert cc SET id = c0.id FROM concerts c0 WHERE c0.key = cc.key;
    SELECT greatest((SELECT max(id) FROM concerts), (SELECT max(id) FROM cat_concert), 0)
    INTO base;
    UPDATE cat_concert cc SET id = base + f.k
    FROM (SELECT ci, row_number() OVER (ORDER BY ci) AS k FROM cat_concert
          WHERE id IS NULL) f WHERE f.ci = cc.ci;

    INSERT INTO concerts (id, key, title, venue, venue_id, on_sale, sale_opens_at, sale_closes_at)
    SELECT cc.id, cc.key, cc.title, v.name, v.id, cc.on_sale, cc.opens, cc.closes
    FROM cat_concert cc JOIN venues v ON v.key = cc.venue_key ORDER BY cc.ci
    ON CONFLICT (id) DO UPDATE
        SET title = EXCLUDED.title, venue = EXCLUDED.venue, venue_id = EXCLUDED.venue_id,
            on_sale = EXCLUDED.on_sale, sale_opens_at = EXCLUDED.sale_opens_at,
            sale_closes_at = EXCLUDED.sale_closes_at
    WHERE (concerts.title, concerts.venue, concerts.venue_id, concerts.on_sale,
           concerts.sale_opens_at, concerts.sale_closes_at)
          IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.venue, EXCLUDED.venue_id,
                            EXCLUDED.on_sale, EXCLUDED.sale_opens_at, EXCLUDED.sale_closes_at);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;

    INSERT INTO concert_prices (concert_id, tier, price)
    SELECT cc.id, p.key, p.value::bigint FROM cat_concert cc, jsonb_each_text(cc.prices) p
    ON CONFLICT (concert_id, tier) DO UPDATE SET price = EXCLUDED.price
    WHERE concert_prices.price <> EXCLUDED.price;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    IF p_prune THEN
        DELETE FROM concert_prices cp USING cat_concert cc
        WHERE cp.concert_id = cc.id AND NOT cc.prices ? cp.tier;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    END IF;

    CREATE TEMP TABLE cat_sched ON COMMIT DROP AS
    SELECT cc.ci, (o - 1)::int AS si, cc.id AS concert_id, x->>'key' AS key,
           (x->>'id')::bigint AS id, (x->>'startsAt')::timestamptz AS starts_at
    FROM cat_concert cc, jsonb_array_elements(cc.schedules) WITH ORDINALITY AS t(x, o);

    SELECT cs.ci, cs.si, cs.key, s0.id INTO bad FROM cat_sched cs
    JOIN schedules s0 ON s0.concert_id = cs.concert_id AND s0.key = cs.key
    WHERE cs.id IS NOT NULL AND cs.id <> s0.id ORDER BY cs.ci, cs.si LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].schedules[%s].id', bad.ci, bad.si),
            format('schedule "%s" has id %s; an id cannot change', bad.key, bad.id));
    END IF;
    SELECT cs.ci, cs.si, cs.id INTO bad FROM cat_sched cs JOIN schedules s0 ON s0.id = cs.id
    WHERE (s0.concert_id, s0.key) <> (cs.concert_id, cs.key) ORDER BY cs.ci, cs.si LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].schedules[%s].id', bad.ci, bad.si),
            format('id %s is another schedule''s', bad.id));
    END IF;
    UPDATE cat_sched cs SET id = s0.id FROM schedules s0
    WHERE s0.concert_id = cs.concert_id AND s0.key = cs.key;
    SELECT greatest((SELECT max(id) FROM schedules), (SELECT max(id) FROM cat_sched), 0)
    INTO base;
    UPDATE cat_sched cs SET id = base + f.k
    FROM (SELECT ci, si, row_number() OVER (ORDER BY ci, si) AS k FROM cat_sched
          WHERE id IS NULL) f WHERE f.ci = cs.ci AND f.si = cs.si;

    -- Schedules the document no longer lists: removed only if no seat of
    -- theirs was ever held (a reservation refers to it).
    IF p_prune THEN
        SELECT cc.ci, s0.key, s0.id INTO bad FROM schedules s0 JOIN cat_concert cc
            ON cc.id = s0.concert_id
        WHERE NOT EXISTS (SELECT 1 FROM cat_sched cs WHERE cs.id = s0.id)
          AND EXISTS (SELECT 1 FROM reservations r WHERE r.schedule_id = s0.id)
        ORDER BY cc.ci, s0.id LIMIT 1;
        IF FOUND THEN
            PERFORM boxoffice_catalog_fail(format('concerts[%s].schedules', bad.ci),
                format('schedule "%s" (id %s) is no longer listed, but seats of it were held '
                       'or sold: it cannot be removed', bad.key, bad.id));
        END IF;
        BEGIN
            DELETE FROM seats s USING schedules s0, cat_concert cc
            WHERE s.schedule_id = s0.id AND cc.id = s0.concert_id
              AND NOT EXISTS (SELECT 1 FROM cat_sched cs WHERE cs.id = s0.id);
            GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
            DELETE FROM schedules s0 USING cat_concert cc
            WHERE cc.id = s0.concert_id
              AND NOT EXISTS (SELECT 1 FROM cat_sched cs WHERE cs.id = s0.id);
            GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        EXCEPTION WHEN foreign_key_violation THEN
            PERFORM boxoffice_catalog_fail('concerts',
                'a schedule no longer listed is referred to (' || SQLERRM || '): it cannot be removed');
        END;
    END IF;

    INSERT INTO schedules (id, concert_id, key, starts_at, total_seats)
    SELECT cs.id, cs.concert_id, cs.key, cs.starts_at,
           (SELECT count(*) FROM cat_plan p WHERE p.vi = cv.vi)
    FROM cat_sched cs JOIN cat_concert cc USING (ci) JOIN cat_venue cv ON cv.key = cc.venue_key
    ORDER BY cs.ci, cs.si
    ON CONFLICT (id) DO UPDATE SET starts_at = EXCLUDED.starts_at,
                                   total_seats = EXCLUDED.total_seats
    WHERE (schedules.starts_at, schedules.total_seats)
          IS DISTINCT FROM (EXCLUDED.starts_at, EXCLUDED.total_seats);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;

    -- The seats every listed schedule should have, and which of them differ.
    CREATE TEMP TABLE cat_seat ON COMMIT DROP AS
    SELECT cs.id AS schedule_id, cs.key AS sched_key, cs.ci, p.vi, p.si, p.ri, p.number,
           p.section, p.seat_row, p.label, p.tier, (cc.prices->>p.tier)::bigint AS price
    FROM cat_sched cs JOIN cat_concert cc USING (ci)
    JOIN cat_venue cv ON cv.key = cc.venue_key JOIN cat_plan p ON p.vi = cv.vi;

    SELECT w.ci, w.tier INTO bad FROM cat_seat w WHERE w.price IS NULL LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].prices', bad.ci),
            format('no price for tier "%s" of its venue''s plan', bad.tier));
    END IF;

    CREATE TEMP TABLE cat_change ON COMMIT DROP AS
    SELECT w.*, s.tier AS old_tier, s.price AS old_price
    FROM cat_seat w LEFT JOIN seats s ON s.schedule_id = w.schedule_id AND s.number = w.number
    WHERE s.number IS NULL
       OR (s.section, s.seat_row, s.label, s.tier, s.price)
          IS DISTINCT FROM (w.section, w.seat_row, w.label, w.tier, w.price);

    -- Lock the seats of every (schedule, tier) a change touches, so that
    -- no hold slips in between the checks below and the writes.
    PERFORM 1 FROM seats s
    WHERE (s.schedule_id, s.tier) IN (SELECT schedule_id, old_tier FROM cat_change
                                      WHERE old_tier IS NOT NULL)
    ORDER BY s.schedule_id, s.number FOR UPDATE;

    -- A held or sold seat keeps its place, tier and price.
    SELECT ch.vi, ch.si, ch.ri, ch.ci, ch.label, ch.sched_key, ch.old_tier, ch.tier INTO bad
    FROM cat_change ch JOIN seats s ON s.schedule_id = ch.schedule_id AND s.number = ch.number
    WHERE boxoffice_seat_status(s) <> 'AVAILABLE'
      AND (s.section, s.seat_row, s.label, s.tier)
          IS DISTINCT FROM (ch.section, ch.seat_row, ch.label, ch.tier)
    ORDER BY ch.vi, ch.si, ch.ri LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('venues[%s].sections[%s].rows[%s]',
                                              bad.vi, bad.si, bad.ri),
            format('seat %s of schedule "%s" (concerts[%s]) is held or sold: the plan cannot '
                   'change its place or tier', bad.label, bad.sched_key, bad.ci));
    END IF;
    -- A tier's price stays while any seat of it is held or sold.
    SELECT ch.ci, ch.old_tier, ch.sched_key INTO bad FROM cat_change ch
    WHERE ch.old_price IS DISTINCT FROM ch.price AND ch.old_tier IS NOT NULL
      AND EXISTS (SELECT 1 FROM seats o WHERE o.schedule_id = ch.schedule_id
                    AND o.tier = ch.old_tier AND boxoffice_seat_status(o) <> 'AVAILABLE')
    ORDER BY ch.ci LIMIT 1;
    IF FOUND THEN
        PERFORM boxoffice_catalog_fail(format('concerts[%s].prices.%s', bad.ci, bad.old_tier),
            format('seats of tier "%s" of schedule "%s" are held or sold: its price cannot '
                   'change', bad.old_tier, bad.sched_key));
    END IF;

    -- Seats the plan no longer has.
    IF p_prune THEN
        SELECT cs.ci, cs.key, s.label, s.number INTO bad
        FROM seats s JOIN cat_sched cs ON cs.id = s.schedule_id
        WHERE NOT EXISTS (SELECT 1 FROM cat_seat w WHERE w.schedule_id = s.schedule_id
                                                     AND w.number = s.number)
          AND EXISTS (SELECT 1 FROM reservations r WHERE r.schedule_id = s.schedule_id
                                                     AND r.seat_number = s.number)
        ORDER BY cs.ci, cs.si, s.number LIMIT 1;
        IF FOUND THEN
            PERFORM boxoffice_catalog_fail(format('concerts[%s].venue', bad.ci),
                format('the plan no longer has seat %s (%s) of schedule "%s", which was held '
                       'or sold: the plan cannot shrink', bad.number, bad.label, bad.key));
        END IF;
        BEGIN
            DELETE FROM seats s USING cat_sched cs
            WHERE cs.id = s.schedule_id
              AND NOT EXISTS (SELECT 1 FROM cat_seat w WHERE w.schedule_id = s.schedule_id
                                                         AND w.number = s.number);
            GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        EXCEPTION WHEN foreign_key_violation THEN
            PERFORM boxoffice_catalog_fail('venues',
                'a seat the plan no longer has is referred to (' || SQLERRM || ')');
        END;
    END IF;

    INSERT INTO seats (schedule_id, number, price, section, seat_row, label, tier)
    SELECT schedule_id, number, price, section, seat_row, label, tier FROM cat_change
    ORDER BY schedule_id, number
    ON CONFLICT (schedule_id, number) DO UPDATE
        SET price = EXCLUDED.price, section = EXCLUDED.section, seat_row = EXCLUDED.seat_row,
            label = EXCLUDED.label, tier = EXCLUDED.tier;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;

    DROP TABLE cat_venue, cat_plan, cat_concert, cat_sched, cat_seat, cat_change;
    RETURN n;
END
$$;

-- The catalogue as the import reads it: every venue, and every concert that
-- has one (a concert made before venues existed has none and is left out).
-- A plan's rows are the runs of consecutive seats of one section, row and
-- tier, which is how the import numbers them.
CREATE OR REPLACE FUNCTION boxoffice_catalog_export() RETURNS text
LANGUAGE sql STABLE AS $$
    WITH runs AS (
        SELECT venue_id, section, seat_row, tier, min(number) AS first, count(*) AS seats
        FROM (SELECT vs.*, vs.number - row_number() OVER (
                         PARTITION BY venue_id, section, seat_row, tier ORDER BY number) AS g
              FROM venue_seats vs) x
        GROUP BY venue_id, section, seat_row, tier, g
    ), secs AS (
        SELECT venue_id, section, min(first) AS first,
               json_agg(json_build_object('row', seat_row, 'seats', seats, 'tier', tier)
                        ORDER BY first) AS rows
        FROM (SELECT r.*, row_number() OVER (PARTITION BY venue_id ORDER BY first)
                          - row_number() OVER (PARTITION BY venue_id, section ORDER BY first) AS g
              FROM runs r) y
        GROUP BY venue_id, section, g
    )
    SELECT json_build_object(
        'venues', COALESCE((SELECT json_agg(json_build_object(
                'key', v.key, 'name', v.name, 'city', v.city,
                'sections', COALESCE((SELECT json_agg(json_build_object(
                                          'name', s.section, 'rows', s.rows) ORDER BY s.first)
                                      FROM secs s WHERE s.venue_id = v.id), '[]'::json))
            ORDER BY v.id) FROM venues v), '[]'::json),
        'concerts', COALESCE((SELECT json_agg(json_build_object(
                'key', c.key, 'id', c.id, 'title', c.title,
                'venue', (SELECT key FROM venues WHERE id = c.venue_id),
                'onSale', c.on_sale,
                'saleOpensAt', boxoffice_ts(c.sale_opens_at),
                'saleClosesAt', boxoffice_ts(c.sale_closes_at),
                'prices', COALESCE((SELECT json_object_agg(p.tier, p.price ORDER BY p.tier)
                                    FROM concert_prices p WHERE p.concert_id = c.id), '{}'::json),
                'schedules', COALESCE((SELECT json_agg(json_build_object(
                        'key', s.key, 'id', s.id, 'startsAt', boxoffice_ts(s.starts_at))
                        ORDER BY s.starts_at, s.id)
                    FROM schedules s WHERE s.concert_id = c.id), '[]'::json))
            ORDER BY c.id) FROM concerts c WHERE c.venue_id IS NOT NULL), '[]'::json))::text
$$;

-- The demo catalogue (07_demo_data.sql): three halls of p_seats seats in
-- rows of ten, the first fifth (at least one seat) in tier "premium" at
-- 150000 and the others "standard" at 90000; concert c in hall
-- 1 + (c - 1) % 3 with id c and key concert-c, its schedule s with id
-- (c - 1) * p_schedules + s and that id in its key (schedule-7), at 19:30 UTC on 2027-06-01 plus
-- 7 (c - 1) + (s - 1) days. The keys are those 011_venues.sql gave the
-- concerts and schedules of before, so that seeding such a database again
-- finds them.
CREATE OR REPLACE FUNCTION boxoffice_demo_catalog(p_concerts integer, p_schedules integer,
                                                  p_seats integer) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH tiers AS (
        SELECT 'premium' AS tier, 'Front' AS section, 0 AS first,
               least(greatest(p_seats / 5, 1), p_seats) AS seats
        UNION ALL
        SELECT 'standard', 'Stalls', greatest(p_seats / 5, 1),
               p_seats - least(greatest(p_seats / 5, 1), p_seats)
    ), rows AS (
        SELECT t.tier, t.section, t.first + r * 10 AS first,
               least(10, t.seats - r * 10) AS seats
        FROM tiers t, generate_series(0, (t.seats - 1) / 10) AS r
        WHERE t.seats > 0
    ), named AS (
        SELECT r.*, row_number() OVER (ORDER BY r.first) - 1 AS i FROM rows r
    ), plan AS (
        SELECT COALESCE(jsonb_agg(jsonb_build_object('name', section, 'rows', rws)
                                  ORDER BY first), '[]') AS sections
        FROM (SELECT section, min(first) AS first,
                     jsonb_agg(jsonb_build_object(
                         'row', CASE WHEN i < 26 THEN chr(65 + i::int)
                                     WHEN i < 702 THEN chr(65 + (i / 26 - 1)::int)
                                                       || chr(65 + (i % 26)::int)
                                     ELSE 'R' || (i + 1) END,
                         'seats', seats, 'tier', tier) ORDER BY first) AS rws
              FROM named GROUP BY section) s
    )
    SELECT jsonb_build_object(
        'venues', (SELECT jsonb_agg(jsonb_build_object(
                       'key', 'hall-' || h, 'name', 'Hall ' || h, 'city', 'Demo City',
                       'sections', plan.sections) ORDER BY h)
                   FROM generate_series(1, 3) AS h, plan),
        'concerts', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                'key', 'concert-' || c, 'id', c, 'title', 'Concert ' || c,
                'venue', 'hall-' || (1 + (c - 1) % 3), 'onSale', true,
                'prices', jsonb_build_object('premium', 150000, 'standard', 90000),
                'schedules', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'key', 'schedule-' || ((c - 1) * p_schedules + s),
                        'id', (c - 1) * p_schedules + s,
                        'startsAt', boxoffice_ts(timestamptz '2027-06-01 19:30:00+00'
                                                 + (c - 1) * interval '7 days'
                                                 + (s - 1) * interval '1 day'))
                        ORDER BY s), '[]')
                    FROM generate_series(1, p_schedules) AS s)) ORDER BY c)
            FROM generate_series(1, p_concerts) AS c), '[]'))
$$;
