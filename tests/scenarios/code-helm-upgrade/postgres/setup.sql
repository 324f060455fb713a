-- The orders of 20,000 customers: big enough that a sequential scan hurts.
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO customers
SELECT g, 'customer' || g || '@example.com' FROM generate_series(1, 20000) AS g;

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL,
    total_cents integer NOT NULL,
    coupon_code text,
    created_at timestamptz NOT NULL
);
INSERT INTO orders (customer_id, status, total_cents, coupon_code, created_at)
SELECT 1 + (g * 7919) % 20000, (ARRAY['paid', 'shipped', 'refunded'])[1 + g % 3],
       100 + (g * 31) % 90000, 'C' || (g % 5000), now() - (g || ' seconds')::interval
FROM generate_series(1, 200000) AS g;
CREATE INDEX ix_orders_status ON orders (status);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
ANALYZE customers;
ANALYZE orders;
