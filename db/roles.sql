-- Roles with least privilege for a central Inspector results database (PostgreSQL).
--
-- Run as a superuser in the results database, AFTER `inspector db upgrade` (run as
-- inspector_owner, the login that owns the tables) has created or upgraded the schema,
-- and again after every upgrade (new tables get their grants here):
--
--     psql "postgresql://postgres@dbhost/inspector" -f db/roles.sql
--
-- Group roles cannot log in; give each person or station its own login that is a
-- member of one of them (see db/README.md):
--
--     CREATE ROLE station_line3 LOGIN PASSWORD '...' IN ROLE inspector_station;
--
-- It is safe to run again: roles that exist are kept, grants are given again.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inspector_station') THEN
        CREATE ROLE inspector_station NOLOGIN;  -- stations: store results and operators' reviews
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inspector_report') THEN
        CREATE ROLE inspector_report NOLOGIN;   -- quality: read everything, change nothing
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inspector_publisher') THEN
        CREATE ROLE inspector_publisher NOLOGIN;  -- process engineers: publish recipe versions
    END IF;
END
$$;

-- Nobody but the owner creates tables here.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO inspector_station, inspector_report, inspector_publisher;

-- Reading: everything, for all three (a station reads what it already inspected, the schema
-- revision, the recipes stored and published before).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO inspector_station, inspector_report, inspector_publisher;

-- Writing, stations only, and only what a run does:
--   recipe_snapshots, runs, inspections, defects, defect_pictures: a run's rows;
--   runs UPDATE: the run's end (status, finish time);
--   inspections DELETE: a hot-folder file that changed after an ERROR replaces that row
--     (its defects and reviews go with it by the foreign keys, as the owner);
--   reviews: operators confirm defects or mark false alarms at the station;
--   stations: a station registers itself, and its host and version when they change.
GRANT INSERT ON recipe_snapshots, runs, inspections, defects, defect_pictures, reviews, stations TO inspector_station;
GRANT UPDATE (status, finished_at) ON runs TO inspector_station;
GRANT UPDATE (host, inspector_version, last_seen) ON stations TO inspector_station;
GRANT DELETE ON inspections TO inspector_station;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO inspector_station;

-- Publishing, process engineers only: a new version of a product's recipe and its files
-- (`inspector recipe publish`). Published versions are never changed or deleted here:
-- stations' results point to them.
GRANT INSERT ON published_recipes, published_files TO inspector_publisher;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO inspector_publisher;
