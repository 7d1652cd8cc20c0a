#!/usr/bin/env bash
# Entrypoint of the postgres:17 stand-in (tests/postgres/Dockerfile), after the
# official image's docker-entrypoint.sh: POSTGRES_USER, POSTGRES_PASSWORD(_FILE),
# POSTGRES_DB and POSTGRES_HOST_AUTH_METHOD mean the same, a cluster is made
# only in an empty PGDATA. Left out: /docker-entrypoint-initdb.d and
# POSTGRES_INITDB_ARGS, which the tests do not use.
set -Eeuo pipefail

# usage: file_env VAR [DEFAULT]
# VAR_FILE names a file holding the value (a Docker secret). Setting both is an
# error, as in the official image; VAR_FILE is unset so that the re-exec as
# postgres, which may not be able to read the file, does not read it again.
file_env() {
	local var=$1 file_var=${1}_FILE def=${2:-}
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$file_var"
		exit 1
	fi
	local val=$def
	if [ -n "${!var:-}" ]; then
		val=${!var}
	elif [ -n "${!file_var:-}" ]; then
		val=$(<"${!file_var}")
	fi
	export "$var=$val"
	unset "$file_var"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	export POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
}

# A fresh volume or bind mount may belong to anyone; PostgreSQL refuses a data
# directory that is not its own or that others can read. chmod may fail under --user, and
# PostgreSQL then says why, so failures are let through.
create_dirs() {
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA" || :
	chmod 3775 /var/run/postgresql || :
	if [ "$(id -u)" = 0 ]; then
		find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres {} +
	fi
}

verify_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOM'
			error: database is uninitialized and superuser password is not specified.
			       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty
			       value, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections
			       without a password (not recommended).
		EOM
		exit 1
	fi
}

# Local socket trust is what the official image has too: only processes inside
# the container reach the socket. The password goes in through a pipe, never on
# a command line; a <(...) must sit in the command that reads it, or bash has
# closed it by then.
init_cluster() {
	local args=(--username="$POSTGRES_USER" --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD")
	if [ -n "$POSTGRES_PASSWORD" ]; then
		initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
	else
		initdb "${args[@]}"
	fi
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# CREATE DATABASE needs a running server. This one has no TCP port and its
# socket in a private directory: unlike the official image's, it cannot fool a
# pg_isready health check into reporting ready before the database exists.
create_db() {
	if [ "$POSTGRES_DB" = postgres ]; then
		return
	fi
	local sockdir
	sockdir=$(mktemp -d)
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$sockdir" -w start
	psql -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -U "$POSTGRES_USER" -d postgres \
		-v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
	pg_ctl -D "$PGDATA" -m fast -w stop
	rmdir "$sockdir"
}

# As root (the default), do what needs root, then run this script again as
# postgres. HOME is set by hand because setpriv, unlike gosu, leaves the
# environment alone (psql would otherwise look in /root).
prepare() {
	setup_env
	create_dirs
	if [ "$(id -u)" = 0 ]; then
		export HOME=/var/lib/postgresql
		exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
	fi
	if [ -s "$PGDATA/PG_VERSION" ]; then
		printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
	else
		verify_env
		init_cluster
		create_db
		printf '\nPostgreSQL init process complete; ready for start up.\n\n'
	fi
}

main() {
	case ${1:-} in
	-*) set -- postgres "$@" ;;
	*) ;;
	esac
	if [ "${1:-}" = postgres ]; then
		prepare "$@"
	fi
	exec "$@"
}

main "$@"
