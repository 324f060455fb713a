-- The orders page of one customer.
SELECT id, status, total_cents FROM orders WHERE customer_id = 4242;
SELECT id, status, total_cents FROM orders WHERE customer_id = 17;
SELECT email FROM customers WHERE id = 4242;
