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

-- Per database where dblink or postgres_fdw is installed: their functions are executable by
-- PUBLIC by default, so the role could make the server connect elsewhere as someone else, and
-- the agent refuses to probe until they are revoked. Run this file once more in that database
-- with the lockdown variable set (it revokes EXECUTE on every function of these extensions
-- from PUBLIC and the role; grant it back to the roles that need it):
--
--   psql -X -v ON_ERROR_STOP=1 -d shop -v lockdown=on -f deploy/sql/diagnose-role.sql
\if :{?lockdown}
SELECT pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I',
                         p.oid::pg_catalog.regprocedure, :'role')
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
     AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
WHERE e.extname IN ('dblink', 'postgres_fdw') \gexec
\endif

-- The role must not be a member of pg_read_server_files, pg_write_server_files,
-- pg_execute_server_program or pg_signal_backend, directly or through another role; the agent
-- checks this (and superuser) at connect time and refuses to probe, naming what to revoke.

-- Optional, per database: let the agent read chosen application tables (never all of them).
--   GRANT USAGE ON SCHEMA shop TO diagnose;
--   GRANT SELECT ON shop.orders, shop.customers TO diagnose;
