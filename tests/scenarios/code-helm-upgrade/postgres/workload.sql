-- The orders page of one customer.
SELECT id, status, total_cents FROM orders WHERE customer_id = 4242;
SELECT id, status, total_cents FROM orders WHERE customer_id = 17;
SELECT email FROM customers WHERE id = 4242;
-- The coupon report, new in revision 8.
SELECT id, customer_id, total_cents FROM orders WHERE coupon_code = 'C4242';
SELECT id, customer_id, total_cents FROM orders WHERE coupon_code = 'C17';
