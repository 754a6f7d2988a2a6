#!/usr/bin/env bash
# The door to the Dagster UI: nginx with a login in front of two webservers bound to loopback.
#
# Dagster OSS has no login: whoever reaches its webserver may launch, cancel and wipe runs. So the
# webservers listen on a loopback (or private) address only, and people come through this proxy:
#   operators  DOOR_LISTEN      -> the full webserver       (DAGSTER_UI, e.g. 127.0.0.1:3000)
#   viewers    DOOR_VIEW_LISTEN -> `dagster-webserver --read-only` (DAGSTER_READONLY_UI, 127.0.0.1:3001)
# each with its own password file, so a viewer's password never opens the operators' door.
#
#   deploy/door.sh passwd FILE NAME      add or replace NAME in FILE (the password is read from stdin)
#   deploy/door.sh up                    render the config into DOOR_DIR and run nginx in the foreground
#
# Settings (environment):
#   DOOR_DIR             runtime folder: nginx.conf, logs, temp files            (default ./door)
#   DOOR_LISTEN          operators' address                                      (default 0.0.0.0:8443)
#   DOOR_VIEW_LISTEN     viewers' address                                        (default 0.0.0.0:8444)
#   DAGSTER_UI           the full webserver                                      (default 127.0.0.1:3000)
#   DAGSTER_READONLY_UI  the read-only webserver                                 (default 127.0.0.1:3001)
#   DOOR_OPERATORS       password file of operators                              (required)
#   DOOR_VIEWERS         password file of viewers                                (required)
#   DOOR_TLS_CERT, DOOR_TLS_KEY  serve HTTPS with this certificate; without them the door speaks plain
#                        HTTP and passwords cross the network in clear: only for a trusted network
set -euo pipefail

usage() { sed -n '10,11p' "$0" | sed 's/^# *//' >&2; exit 2; }

passwd() {  # FILE NAME: one line `NAME:<SHA-512 crypt>`, the format nginx's auth_basic reads
    local file=$1 name=$2 password hashed
    [[ $name =~ ^[A-Za-z0-9._@-]+$ ]] || { echo "door: a user name is letters, digits and ._@- only" >&2; exit 2; }
    IFS= read -r password || true
    [ ${#password} -ge 12 ] || { echo "door: a password of at least 12 characters, on stdin" >&2; exit 2; }
    hashed=$(printf '%s' "$password" | openssl passwd -6 -stdin)
    touch "$file" && chmod 640 "$file"
    { grep -v "^${name}:" "$file" || true; echo "${name}:${hashed}"; } > "$file.new"
    mv "$file.new" "$file"
}

server() {  # LISTEN REALM PASSWORDS UPSTREAM
    local listen=$1 realm=$2 passwords=$3 upstream=$4 tls=""
    if [ -n "${DOOR_TLS_CERT:-}" ]; then
        tls="ssl;
        ssl_certificate     $DOOR_TLS_CERT;
        ssl_certificate_key $DOOR_TLS_KEY;
        ssl_protocols       TLSv1.2 TLSv1.3"
    fi
    cat <<EOF
    server {
        listen $listen $tls;
        auth_basic "$realm";
        auth_basic_user_file $passwords;
        location / {
            proxy_pass http://$upstream;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;      # the UI's live updates are a websocket
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$host;
            proxy_set_header Authorization "";            # the password stops here
            proxy_set_header X-Forwarded-User \$remote_user;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_read_timeout 1h;
            client_max_body_size 16m;
        }
    }
EOF
}

up() {
    local dir=${DOOR_DIR:-./door}
    : "${DOOR_OPERATORS:?the operators password file: deploy/door.sh passwd FILE NAME}"
    : "${DOOR_VIEWERS:?the viewers password file: deploy/door.sh passwd FILE NAME}"
    if [ -n "${DOOR_TLS_CERT:-}" ] && [ -z "${DOOR_TLS_KEY:-}" ]; then
        echo "door: DOOR_TLS_CERT needs DOOR_TLS_KEY" >&2; exit 2
    fi
    mkdir -p "$dir/temp"
    dir=$(cd "$dir" && pwd)
    local operators viewers
    operators=$(realpath "$DOOR_OPERATORS"); viewers=$(realpath "$DOOR_VIEWERS")
    cat > "$dir/nginx.conf" <<EOF
# Rendered by deploy/door.sh: edit the script, not this file.
worker_processes 1;
user $(id -un);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 512; }
http {
    # who came in, what they asked, what the door answered, and which webserver (if any) saw it
    log_format door '\$time_iso8601 \$remote_addr user=\$remote_user "\$request" \$status upstream=\$upstream_addr';
    access_log $dir/access.log door;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path       $dir/temp/proxy;
    fastcgi_temp_path     $dir/temp/fastcgi;
    uwsgi_temp_path       $dir/temp/uwsgi;
    scgi_temp_path        $dir/temp/scgi;
    server_tokens off;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
$(server "${DOOR_LISTEN:-0.0.0.0:8443}" "platform_assets (operators)" "$operators" "${DAGSTER_UI:-127.0.0.1:3000}")
$(server "${DOOR_VIEW_LISTEN:-0.0.0.0:8444}" "platform_assets (read-only)" "$viewers" "${DAGSTER_READONLY_UI:-127.0.0.1:3001}")
}
EOF
    nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
    exec nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g "daemon off;"
}

case "${1:-}" in
    passwd) [ $# -eq 3 ] || usage; passwd "$2" "$3" ;;
    up) up ;;
    *) usage ;;
esac
