-- The least-privilege role diagnose's read-only PostgreSQL probes connect as (docs/database.md).
--
-- Run as a superuser (or a role with CREATEROLE and ADMIN on pg_monitor), once per cluster:
--
--   psql -X -v ON_ERROR_STOP=1 -d postgres -f deploy/sql/diagnose-role.sql
--   psql -X -v ON_ERROR_STOP=1 -d postgres -v role=diagnose_ro -f deploy/sql/diagnose-role.sql
--
-- then set its password from a secret store (\password diagnose), never in this file.
-- The role can log in and read statistics (pg_monitor: pg_read_all_stats, pg_read_all_settings,
-- pg_stat_scan_tables) and nothing else: no superuser, no CREATE anywhere, no replication, no
-- signalling other backends (no pg_signal_backend), and every session of it starts read-only
-- with timeouts, whatever client connects as it. Grant SELECT on application tables only if you
-- want the agent to read them (see the end of this file). It is idempotent.

\if :{?role}
\else
  \set role diagnose
\endif

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS create_role \gset
\if :create_role
  CREATE ROLE :"role" LOGIN;
\endif

ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION
  NOBYPASSRLS CONNECTION LIMIT 5;
COMMENT ON ROLE :"role" IS 'diagnose: read-only incident probes (deploy/sql/diagnose-role.sql)';

-- Statistics and settings, read-only.
GRANT pg_monitor TO :"role";

-- Every session starts read-only and bounded, even outside the agent's own session settings.
ALTER ROLE :"role" SET default_transaction_read_only = on;
ALTER ROLE :"role" SET statement_timeout = '10s';
ALTER ROLE :"role" SET lock_timeout = '2s';
ALTER ROLE :"role" SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE :"role" SET application_name = 'diagnose-probe';

-- No CREATE granted to the role itself. PostgreSQL 15 and later no longer grant CREATE on the
-- public schema to PUBLIC; on older clusters, consider `REVOKE CREATE ON SCHEMA public FROM
-- PUBLIC` in each database (it affects every role, so it is not done here).
REVOKE CREATE ON SCHEMA public FROM :"role";

-- pg_stat_statements: pg_monitor (through pg_read_all_stats) already sees every statement's
-- text. Its reset functions stay revoked (they are superuser-only by default).

-- Optional, per database: let the agent read chosen application tables (never all of them).
--   GRANT USAGE ON SCHEMA shop TO diagnose;
--   GRANT SELECT ON shop.orders, shop.customers TO diagnose;
