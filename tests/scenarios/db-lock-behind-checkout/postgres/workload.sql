SELECT count(*) FROM orders WHERE customer_id = 42;
INSERT INTO orders (customer_id, status) VALUES (42, 'paid');
