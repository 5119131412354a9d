#!/usr/bin/env bash
# Builds Dockerfile.worker with podman and buildah, without a registry (issue 17, part 4).
#
#   scripts/build-image.sh           build the image, or reuse it when nothing it is built from
#                                    changed; prints its name (localhost/media-worker:<key>)
#   scripts/build-image.sh --check   only say whether podman can run here (exit 0 or 3),
#                                    installing nothing
#   scripts/build-image.sh --if-possible   build, or exit 0 without a word where podman cannot
#                                    run (`make test`: the image's test then skips, saying why)
#
# No Docker engine runs on these machines and no registry is reachable, so the base image is
# made here: debootstrap writes a minimal Debian bookworm with python3 and python3-venv (what
# python:3.11-slim is) from the Debian mirror apt uses, with the machine's CA certificates and
# pip configuration (so pip in the build reaches the same PyPI, through the same proxy, as the
# host's pip), and `podman import` turns it into localhost/media-worker-base. Then
#   buildah bud --format docker --network host --build-arg PYTHON_IMAGE=<that base>
# builds Dockerfile.worker unchanged. `--format docker` because the default OCI format silently
# drops HEALTHCHECK. deploy/podman/containers.conf picks runc and sets the containers' ulimits.
#
# Both images are keyed on what they are made of (the base on its recipe, the CA certificates
# and the pip configuration; the image on the base, Dockerfile.worker, .dockerignore,
# pyproject.toml, README.md and src/), so a second run, or the next CI run on this machine,
# reuses them from podman's store (/var/lib/containers for root, outside the clone). Older
# images of this script are removed once a new one is built.
#
# Exit status: 0 built or reused; 3 podman cannot run here (one line on stderr saying why);
# anything else, the build failed. Installs podman, buildah, runc and debootstrap with
# scripts/ensure-tools.sh --image when it can (root with apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/deploy/podman/containers.conf}"
NAME=localhost/media-worker
BASE_NAME=localhost/media-worker-base
SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates

MODE=${1:-}
cannot() {
  [ "$MODE" = --if-possible ] && exit 0
  echo "build-image: $*" >&2; exit 3
}
log() { echo "build-image: $*" >&2; }

# --- can podman run here? ------------------------------------------------------------------
case "$MODE" in
  --check) ;;
  --if-possible) scripts/ensure-tools.sh --image 2>/dev/null ;;
  *) scripts/ensure-tools.sh --image ;;
esac
for tool in podman buildah; do
  command -v "$tool" >/dev/null || cannot "$tool is not installed (scripts/ensure-tools.sh --image installs it as root)"
done
podman info >/dev/null 2>&1 || cannot "podman cannot run here: $(podman info 2>&1 | tail -1)"
# Whether it runs containers too, once there is an image to run (the base).
probe() {
  local out
  out=$(podman run --rm --network none "$1" true 2>&1) \
    || cannot "podman cannot run containers here: $(echo "$out" | tail -1)"
}

# --- the base -------------------------------------------------------------------------------
# The mirror apt's sources name first (deb822 .sources or one-line sources.list).
mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
          | grep -v -- '-security' | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                          | grep -v -- '-security' | awk '{print $2}' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# The host's pip configuration as the build's /etc/pip.conf: /etc/pip.conf (its [global]
# cert, index-url, …) plus the PIP_* variables naming an index, a certificate or a timeout.
# Only what reaches an index: constraints and find-links name files of this machine.
pip_conf() {
  python3 - <<'EOF'
import configparser, os, sys
conf = configparser.ConfigParser()
conf.read("/etc/pip.conf")
if not conf.has_section("global"):
    conf.add_section("global")
for section in conf.sections():
    for key in ("constraint", "constraints", "find-links", "find_links"):
        conf.remove_option(section, key)
for var in ("INDEX_URL", "EXTRA_INDEX_URL", "TRUSTED_HOST", "CERT", "DEFAULT_TIMEOUT"):
    value = os.environ.get("PIP_" + var)
    if value:
        conf.set("global", var.lower().replace("_", "-"), value)
# Inside the image the machine's certificates are in the system bundle (update-ca-certificates).
if conf.has_option("global", "cert"):
    conf.set("global", "cert", "/etc/ssl/certs/ca-certificates.crt")
conf.write(sys.stdout)
EOF
}

MIRROR=$(mirror)
PIP_CONF=$(pip_conf)
shopt -s nullglob
CERTS=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
BASE_KEY=$( { echo "$SUITE $BASE_PACKAGES $MIRROR v1"; echo "$PIP_CONF";
              [ ${#CERTS[@]} -eq 0 ] || cat "${CERTS[@]}"; } | sha256sum | cut -c1-12)
BASE=$BASE_NAME:$BASE_KEY

if [ "$MODE" = --check ]; then
  if podman image exists "$BASE"; then probe "$BASE"; fi
  exit 0
fi

if ! podman image exists "$BASE"; then
  command -v debootstrap >/dev/null \
    || cannot "debootstrap is not installed (scripts/ensure-tools.sh --image installs it as root)"
  started=$SECONDS
  work=$(mktemp -d /var/tmp/media-worker-base.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  log "making $BASE: debootstrap $SUITE from $MIRROR"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$work/root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  if [ ${#CERTS[@]} -gt 0 ]; then
    cp "${CERTS[@]}" "$work/root/usr/local/share/ca-certificates/"
    chroot "$work/root" update-ca-certificates >/dev/null
  fi
  echo "$PIP_CONF" >"$work/root/etc/pip.conf"
  # What python:3.11-slim leaves out too: the packages' downloads and lists, documentation,
  # manuals and translations (and a dpkg rule keeping them out of any later install).
  rm -rf "$work/root"/var/cache/apt/archives/*.deb "$work/root"/var/cache/apt/*.bin \
         "$work/root"/var/lib/apt/lists/* "$work/root"/usr/share/doc/* \
         "$work/root"/usr/share/man/* "$work/root"/usr/share/info/* \
         "$work/root"/usr/share/locale/* "$work/root"/var/log/*.log
  cat >"$work/root/etc/dpkg/dpkg.cfg.d/excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  tar --numeric-owner -C "$work/root" -c . \
    | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE" >/dev/null
  rm -rf "$work"
  trap - EXIT
  log "made $BASE in $((SECONDS - started)) s"
fi
probe "$BASE"

# --- the image ------------------------------------------------------------------------------
# Built from a snapshot of the files it reads, every one dated 1970: buildah's layer cache of a
# COPY compares modification times too, so a fresh clone would otherwise reinstall every
# dependency; and a file edited meanwhile cannot end up in the image without its key changing.
# The key hashes the base and the snapshot. The `deps` stage (the virtualenv with the
# dependencies, from pyproject.toml alone) is tagged too, keyed on the base and pyproject.toml:
# buildah's layer cache reuses it while only the sources change, and the tag keeps
# `podman image prune` from removing it.
context=$(mktemp -d /var/tmp/media-worker-context.XXXXXX)
trap 'rm -rf "$context"' EXIT
{ printf '%s\n' Dockerfile.worker .dockerignore pyproject.toml README.md
  find src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*'
} | LC_ALL=C sort | tar --create --files-from=- --mtime=@0 | tar --extract --directory "$context"
find "$context" -exec touch --no-dereference --date=@0 {} +
key() {
  { podman image inspect --format '{{.Id}}' "$BASE"
    cd "$context" && find "$@" -type f | LC_ALL=C sort | xargs sha256sum --; } \
    | sha256sum | cut -c1-12
}
IMAGE=$NAME:$(key .)
DEPS=$NAME-deps:$(key Dockerfile.worker .dockerignore pyproject.toml)

bud() {
  buildah bud --format docker --layers --network host --build-arg "PYTHON_IMAGE=$BASE" \
    --file "$context/Dockerfile.worker" "$@" "$context" >>var/build-image.log 2>&1 \
    || { tail -30 var/build-image.log >&2; log "failed; the whole log is var/build-image.log"
         exit 1; }
}

if ! podman image exists "$IMAGE"; then
  started=$SECONDS
  log "building $IMAGE from $BASE (log: var/build-image.log)"
  mkdir -p var
  : >var/build-image.log
  podman image exists "$DEPS" || bud --target deps --tag "$DEPS"
  bud --tag "$IMAGE"
  log "built $IMAGE in $((SECONDS - started)) s"
  # What earlier builds left, once an hour old (another clone's tests may be running theirs):
  # their images, and the untagged layers only they used.
  podman images --filter until=1h --format '{{.Repository}}:{{.Tag}}' \
    | grep -E "^($NAME|$NAME-deps|$BASE_NAME):" \
    | grep -vxF -e "$IMAGE" -e "$NAME:local" -e "$DEPS" -e "$BASE" \
    | xargs -r podman rmi >/dev/null 2>&1 || true
  podman image prune --force --filter until=1h >/dev/null 2>&1 || true
fi
podman tag "$IMAGE" "$NAME:local"  # the name compose.yaml gives it
echo "$IMAGE"
