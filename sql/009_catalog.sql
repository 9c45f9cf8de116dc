-- 009_catalog.sql: a concert's sale window, and where each seat is.
--
-- sale_opens_at / sale_closes_at: NULL means no limit on that side, so a
-- concert with both NULL is on sale whenever on_sale is true, as before
-- these columns existed. on_sale stays the operator's switch (a sale can be
-- stopped inside its window); the window is the published plan that the
-- queue and the holds follow.
ALTER TABLE concerts
    ADD COLUMN sale_opens_at  timestamptz,
    ADD COLUMN sale_closes_at timestamptz,
    ADD CONSTRAINT concerts_sale_window_order
        CHECK (sale_opens_at IS NULL OR sale_closes_at IS NULL
               OR sale_closes_at > sale_opens_at);

-- A seat's place in its hall as printed on the ticket (section "Stalls",
-- row "C", label "C-12") and its price tier. Kept on the seat row itself,
-- beside the price, so that the seat map and the ticket list read them in
-- the pass they already make; the venue's seat plan they are copied from
-- is the catalogue's. Empty for seats created before there were plans.
ALTER TABLE seats
    ADD COLUMN section  text NOT NULL DEFAULT '',
    ADD COLUMN seat_row text NOT NULL DEFAULT '',
    ADD COLUMN label    text NOT NULL DEFAULT '',
    ADD COLUMN tier     text NOT NULL DEFAULT '';
-- No CHECK on their lengths: every hold and sale writes this row, and a
-- CHECK is parsed again by each such statement (see 001_schema.sql). The
-- catalogue import, their only writer, bounds them.
