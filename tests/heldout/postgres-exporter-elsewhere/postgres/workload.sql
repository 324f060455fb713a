SELECT id, status FROM orders WHERE customer_id = 42;
INSERT INTO orders (customer_id, status, total_cents) VALUES (42, 'paid', 4200);
SELECT count(*) FROM shipments WHERE shipped_at IS NULL;
