# trac-breezy: Trac and Bazaar (Breezy's smart server) behind one Apache httpd
# with a pip-built mod_wsgi, run by supervisord.
#
# Builds with BuildKit and with the legacy builder alike (no RUN --mount), and
# contacts no container registry: BASE_IMAGE must be in the local image store
# (scripts/make-base-image makes debian:trixie-slim from Debian's packages).
ARG BASE_IMAGE=debian:trixie-slim

# ---- build: compile mod_wsgi and install the pinned Python stack ------------
FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        apache2-dev ca-certificates gcc libc6-dev libpq-dev python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*

# Extra CA certificates (build-certs/*.crt) are trusted by pip here and only
# here: this stage is thrown away, the final image copies the virtualenv alone.
COPY build-certs/ /tmp/build-certs/
RUN cat /etc/ssl/certs/ca-certificates.crt > /tmp/build-ca.pem \
    && find /tmp/build-certs -name '*.crt' -exec cat {} + >> /tmp/build-ca.pem

COPY requirements.lock /tmp/requirements.lock
# --no-cache-dir: a cached wheel of mod_wsgi may be built against another Python.
RUN python3.13 -m venv /opt/trac-breezy \
    && PIP_CERT=/tmp/build-ca.pem SSL_CERT_FILE=/tmp/build-ca.pem \
       /opt/trac-breezy/bin/pip install --no-cache-dir --disable-pip-version-check \
           --require-hashes -r /tmp/requirements.lock \
    && /opt/trac-breezy/bin/mod_wsgi-express module-config > /tmp/wsgi-module.conf \
    && cat /tmp/wsgi-module.conf

# Trac plugins from PyPI, chosen at build time (docs/plugins.md): pinned
# requirement specifiers, e.g. --build-arg TRAC_PLUGINS="TracAccountManager==0.6.0";
# nothing is downloaded at start. The lock's versions are constraints, so a
# plugin cannot move Trac or Breezy. Declared this late so that another
# choice rebuilds only the layers below.
ARG TRAC_PLUGINS=""
# hadolint ignore=SC2086
RUN if [ -n "$TRAC_PLUGINS" ]; then \
        for spec in $TRAC_PLUGINS; do \
            case "$spec" in \
                *==*) ;; \
                *) echo "TRAC_PLUGINS: pin each package as NAME==VERSION, not $spec" >&2; exit 1 ;; \
            esac; \
        done \
        && sed -e '/^ *--hash/d' -e 's/ *\\$//' -e '/^ *#/d' -e '/^$/d' /tmp/requirements.lock \
            > /tmp/constraints.txt \
        && PIP_CERT=/tmp/build-ca.pem SSL_CERT_FILE=/tmp/build-ca.pem \
           /opt/trac-breezy/bin/pip install --no-cache-dir --disable-pip-version-check \
               --constraint /tmp/constraints.txt $TRAC_PLUGINS; \
    fi

COPY pyproject.toml README.md /src/
COPY trac_breezy/ /src/trac_breezy/
RUN /opt/trac-breezy/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-deps --no-build-isolation --no-index /src \
    && /opt/trac-breezy/bin/pip check

# ---- runtime: Apache, Python and the virtualenv; no compiler ----------------
# libpq5 for psycopg2; postgresql-client for pg_dump and psql, which Trac's
# hotcopy and our restore use on PostgreSQL projects.
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        apache2-bin apache2-utils ca-certificates libapache2-mod-qos libpq5 \
        libpython3.13 media-types \
        postgresql-client \
        python3.13 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/trac-breezy /opt/trac-breezy
COPY --from=build /tmp/wsgi-module.conf /usr/share/trac-breezy/apache/wsgi-module.conf
# rootfs/ mirrors where its files land (entrypoint, supervisord.conf); the
# Apache template and the WSGI scripts keep their own top-level folders.
COPY rootfs/ /
COPY apache/ /usr/share/trac-breezy/apache/
COPY wsgi/ /usr/share/trac-breezy/wsgi/

# Fresh named volumes copy these directories, ownership included, so a bare
# `docker compose up` gets volumes that www-data (33) can write.
# /run/trac-breezy is open (sticky, like /tmp) only for a container started
# as another user (compose `user:`); started as root, the entrypoint makes it
# root's own (0755) before anything else, and the servers get a fresh
# subdirectory of their own at each start.
RUN mkdir -p /var/lib/trac /srv/bzr /var/lib/trac-breezy /run/trac-breezy \
        /usr/share/trac-breezy/empty \
    && chown www-data:www-data /var/lib/trac /srv/bzr /var/lib/trac-breezy \
    && chmod 1777 /run/trac-breezy

# PGPASSFILE: written at start from TRAC_DATABASE_PASSWORD(_FILE); set here so
# that `docker compose exec web trac-admin ...` finds it too. PYTHONWARNINGS:
# Trac 1.6 imports pkg_resources (hence setuptools<81), whose deprecation
# warning every Python that loads Trac printed (the entrypoint's too, at each
# start); Apache's daemons have WSGIPythonWarnings for the same.
# TRAC_BREEZY_SERVER_RUN_DIR: what supervisord.conf expands, so that
# `docker compose exec web supervisorctl -c /usr/share/trac-breezy/supervisord.conf
# status` works too, not only in the processes the entrypoint starts.
ENV PATH=/opt/trac-breezy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONWARNINGS="ignore:pkg_resources is deprecated:UserWarning" \
    PGPASSFILE=/run/trac-breezy/server/pgpass \
    TRAC_BREEZY_SERVER_RUN_DIR=/run/trac-breezy/server
VOLUME ["/var/lib/trac", "/srv/bzr", "/var/lib/trac-breezy"]
# 8443: HTTPS, when TLS_CERT_FILE is set (docs/https.md).
EXPOSE 8080 8443
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint"]
CMD ["supervisord"]
