CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
INSERT INTO orders (customer_id, status)
SELECT g % 500, 'paid' FROM generate_series(1, 5000) AS g;
ANALYZE orders;
