-- The shop database allows 24 connections; a leaky worker keeps transactions open.
ALTER DATABASE shop CONNECTION LIMIT 24;
CREATE TABLE carts (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO carts (customer_id) SELECT g FROM generate_series(1, 2000) AS g;
ANALYZE carts;
