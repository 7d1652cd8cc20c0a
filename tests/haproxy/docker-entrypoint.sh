#!/bin/sh
# Entrypoint of the haproxy stand-in (tests/haproxy/Dockerfile), as the
# official image's: options alone run haproxy with them, and haproxy runs in
# master-worker mode (-W) in the foreground without a daemon (-db).
set -e

if [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
	shift
	set -- haproxy -W -db "$@"
fi
exec "$@"
