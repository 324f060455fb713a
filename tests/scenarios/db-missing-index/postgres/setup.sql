-- An orders table big enough that a sequential scan hurts, and no index on customer_id.
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO customers
SELECT g, 'customer' || g || '@example.com', now() - (g || ' minutes')::interval
FROM generate_series(1, 20000) AS g;

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL,
    total_cents integer NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO orders (customer_id, status, total_cents, created_at)
SELECT 1 + (g * 7919) % 20000, (ARRAY['paid', 'shipped', 'refunded'])[1 + g % 3],
       100 + (g * 31) % 90000, now() - (g || ' seconds')::interval
FROM generate_series(1, 200000) AS g;
ANALYZE customers;
ANALYZE orders;
