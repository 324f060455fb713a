CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE shipments (
    order_id bigint PRIMARY KEY REFERENCES orders (id),
    carrier text NOT NULL,
    shipped_at timestamptz
);
INSERT INTO orders (customer_id, status, total_cents)
SELECT g % 800, 'paid', 1000 + g % 9000 FROM generate_series(1, 8000) AS g;
INSERT INTO shipments (order_id, carrier) SELECT id, 'dhl' FROM orders WHERE id % 3 = 0;
ANALYZE orders;
ANALYZE shipments;
