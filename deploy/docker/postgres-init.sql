-- Run once by the postgres image, when it creates its data directory.
-- The service's own role is an ordinary one: row-level security binds it (a superuser, like
-- the image's POSTGRES_USER, would bypass it, and the service refuses to start as one:
-- docs/operations.md, "The database role"). It owns its database, so `autocall db-upgrade`
-- creates the tables, and owns them.
CREATE ROLE autocall LOGIN PASSWORD 'autocall' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE autocall OWNER autocall;
