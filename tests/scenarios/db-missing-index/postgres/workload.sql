-- The orders page of one customer: a selective filter on an unindexed column.
SELECT id, status, total_cents FROM orders WHERE customer_id = 4242 ORDER BY created_at DESC LIMIT 20;
SELECT id, status, total_cents FROM orders WHERE customer_id = 17 ORDER BY created_at DESC LIMIT 20;
-- Lookups that are fine (primary key).
SELECT email FROM customers WHERE id = 4242;
