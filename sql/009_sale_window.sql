-- 009_sale_window.sql: when a concert's sale opens and closes.
--
-- NULL means no limit on that side: a concert with both NULL is on sale
-- whenever on_sale is true, as before these columns existed. on_sale stays
-- the operator's switch (a sale can be stopped inside its window); the
-- window is the published plan that the queue and the holds follow.
ALTER TABLE concerts
    ADD COLUMN sale_opens_at  timestamptz,
    ADD COLUMN sale_closes_at timestamptz,
    ADD CONSTRAINT concerts_sale_window_order
        CHECK (sale_opens_at IS NULL OR sale_closes_at IS NULL
               OR sale_closes_at > sale_opens_at);
