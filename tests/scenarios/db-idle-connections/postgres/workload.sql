SELECT id FROM carts WHERE id = 42;
UPDATE carts SET updated_at = now() WHERE id = 42;
